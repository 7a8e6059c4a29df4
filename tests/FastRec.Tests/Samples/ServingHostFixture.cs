// Fixtures of the serving-host tests: a tiny random FastRec checkpoint and a tiny item-tower recommender over the synthetic
// items, and the host on 127.0.0.1.
using FastRec.Tests.Cli;
using FastRec.Engine.Model;
using FastRec.Engine.Training;
using FastRec.Kernels.Cpu;
using FastRec.Serving;
using FastRec.Tests.Training;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;

namespace FastRec.Tests.Samples;

/// <summary>A temp folder with the synthetic items (i0..i19, "good w0 film" ...) and a random-weight checkpoint of the tiny
/// BERT whose head takes two dense features, "score" (mean 0.5, std 0.25) and "age" (mean 0, std 2), context size K = 2;
/// and, on first use, an item-tower recommender over the same items (<see cref="Tower"/>).</summary>
internal sealed class TinyCheckpoint : IDisposable
{
    private readonly TrainFixture _fx = new();
    public string Dir => _fx.Ckpt("serving");
    public string Items => _fx.Items;
    public string Root => _fx.Root;
    public const int ContextSize = 2;
    public static readonly string[] Dense = ["score", "age"];

    public TinyCheckpoint()
    {
        using var backend = new CpuSimdBackend();
        using var rec = Recommender.FromPretrained(_fx.ModelDir, backend, new AdapterConfig { HiddenSizes = [8], DenseFeatures = 2 },
                                                   new TextOptions { MaxLength = 24 }, seed: 3);
        rec.Scaler = new FeatureScaler(Dense, [0.5f, 0f], [0.25f, 2f]);
        rec.Schema = new DataSchema { ItemsPath = _fx.Items, Examples = new Engine.Data.ExampleOptions { ContextSize = ContextSize } };
        Checkpoint.Save(rec, Dir);
    }

    /// <summary>An item-tower recommender over the same items (i0..i19), trained for one epoch on the synthetic
    /// interactions by the CLI (<c>fastrec tower ... --cache none --epochs 1</c>, as RecommendCliTests does); written on
    /// first use.</summary>
    public string Tower
    {
        get
        {
            string file = Path.Combine(_fx.Root, "tower.frts");
            if (!File.Exists(file))
            {
                var (code, output, err) = CliTests.Run("tower", "--interactions", _fx.Interactions, "--items", _fx.Items, "--encoder", _fx.ModelDir,
                    "--out", file, "--cache", "none", "--backend", "cpu", "--epochs", "1");
                if (code != 0) throw new InvalidOperationException($"fastrec tower failed ({code}): {err}{output}");
            }
            return file;
        }
    }

    public void Dispose() => _fx.Dispose();
}

/// <summary>The host on a free port of 127.0.0.1, started; <see cref="Client"/> talks to it.</summary>
internal sealed class RunningHost : IAsyncDisposable
{
    public WebApplication App { get; }
    public HttpClient Client { get; }
    public Uri Address { get; }

    private RunningHost(WebApplication app, Uri address)
    {
        App = app; Address = address;
        Client = new HttpClient { BaseAddress = address, Timeout = TimeSpan.FromSeconds(30) };
    }

    /// <param name="options">What to serve.</param>
    /// <param name="beforeStart">Adds to the pipeline before the endpoints (tests: a probe middleware).</param>
    public static async Task<RunningHost> StartAsync(ServingOptions options, Action<WebApplication>? beforeStart = null)
    {
        var builder = WebApplication.CreateBuilder(new WebApplicationOptions { Args = [], ContentRootPath = Path.GetTempPath() });
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        builder.Logging.ClearProviders();
        var app = ServingHost.Build(builder, options);
        beforeStart?.Invoke(app);
        await app.StartAsync();
        return new RunningHost(app, new Uri(app.Urls.Single()));
    }

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
    }
}
