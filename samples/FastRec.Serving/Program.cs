// Entry point: `dotnet run -c Release --project samples/FastRec.Serving -- [--model CKPT] [--recommender TOWER.frts] [--urls http://127.0.0.1:5080]`.
return await FastRec.Serving.ServingHost.RunAsync(args);
