// Entry point: `dotnet run -c Release --project samples/FastRec.Serving -- --model CKPT [--urls http://127.0.0.1:5080]`.
return await FastRec.Serving.ServingHost.RunAsync(args);
