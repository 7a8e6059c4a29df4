// The serving host: options, the ASP.NET Core minimal API (POST /score, POST /recommend, GET /healthz, the OpenAPI
// document), limits and shutdown.
using System.Buffers;
using System.Globalization;
using System.Text.Json;
using FastRec.Engine.Serving;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.AspNetCore.WebUtilities;

namespace FastRec.Serving;

/// <summary>What the host serves and its limits (command line: <c>[--model DIR] [--recommender FILE] [--items FILE]
/// [--precision float32|int16] [--max-request-bytes N] [--shutdown-seconds S] [--urls URL]</c>, at least one of --model
/// and --recommender; the same keys work as environment variables).</summary>
public sealed record ServingOptions
{
    /// <summary>The FastRec checkpoint directory (from <c>fastrec train</c> or <c>fastrec distill</c>) that <c>POST /score</c>
    /// serves; null: /score is not served (it answers 404 naming <c>--model</c>).</summary>
    public string? Model { get; init; }
    /// <summary>The item-tower recommender file (<c>.frts</c>, from <c>fastrec tower --out FILE</c>) that <c>POST /recommend</c>
    /// serves; null: /recommend is not served (it answers 404 naming <c>--recommender</c>).</summary>
    public string? Recommender { get; init; }
    /// <summary>An items file to map ids to texts instead of the one the checkpoint's data schema names (null: the schema's).</summary>
    public string? Items { get; init; }
    /// <summary>Arithmetic of the encoder's Linears (<see cref="ServingPrecision.Float32"/>, the model's own numbers, by default).</summary>
    public ServingPrecision Precision { get; init; } = ServingPrecision.Float32;
    /// <summary>Largest request body in bytes (Kestrel's MaxRequestBodySize); a larger one is answered 413. Default 16 KiB.</summary>
    public long MaxRequestBytes { get; init; } = 16 * 1024;
    /// <summary>How long shutdown (SIGTERM, Ctrl+C) waits for requests in flight before it stops. Default 10 s.</summary>
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>The message when neither <see cref="Model"/> nor <see cref="Recommender"/> is given.</summary>
    public const string NothingToServe = "nothing to serve: give --model DIR (a FastRec checkpoint, for POST /score) and/or " +
                                         "--recommender FILE (an item-tower recommender written by `fastrec tower --out FILE`, for POST /recommend)";

    /// <summary>Reads the options from configuration (command line <c>--model</c> etc., or environment variables); errors
    /// name the key and the value.</summary>
    /// <exception cref="ArgumentException">neither <c>model</c> nor <c>recommender</c>, or a bad value.</exception>
    public static ServingOptions From(IConfiguration config)
    {
        ArgumentNullException.ThrowIfNull(config);
        var o = new ServingOptions
        {
            Model = config["model"] is { Length: > 0 } m ? m : null,
            Recommender = config["recommender"] is { Length: > 0 } r ? r : null,
            Items = config["items"],
        };
        if (o.Model is null && o.Recommender is null) throw new ArgumentException(NothingToServe);
        if (o.Items is not null && o.Model is null) throw new ArgumentException("--items maps the ids of the --model checkpoint; give --model too (a --recommender file carries its own catalogue)");
        if (config["precision"] is { } p)
            o = o with
            {
                Precision = p.ToLowerInvariant() switch
                {
                    "float32" or "fp32" => ServingPrecision.Float32,
                    "int16" => ServingPrecision.Int16,
                    _ => throw new ArgumentException($"--precision: '{p}' is not float32 or int16"),
                },
            };
        if (config["max-request-bytes"] is { } b)
            o = o with { MaxRequestBytes = long.TryParse(b, NumberStyles.None, CultureInfo.InvariantCulture, out long n) && n >= 64 ? n : throw new ArgumentException($"--max-request-bytes: '{b}' is not an integer >= 64") };
        if (config["shutdown-seconds"] is { } s)
            o = o with { ShutdownTimeout = double.TryParse(s, NumberStyles.Float, CultureInfo.InvariantCulture, out double t) && t >= 0 && t <= 3600 ? TimeSpan.FromSeconds(t) : throw new ArgumentException($"--shutdown-seconds: '{s}' is not a number of seconds in [0, 3600]") };
        return o;
    }
}

/// <summary>The <c>GET /healthz</c> answer. The /score fields are null when no <c>--model</c> is served.</summary>
/// <param name="Status">"ok" once the models are loaded (they are loaded before the host listens).</param>
/// <param name="Serves">The endpoints this host answers, e.g. "POST /score", "POST /recommend".</param>
/// <param name="Model">The checkpoint directory /score serves.</param>
/// <param name="Items">Items in the checkpoint's catalogue.</param>
/// <param name="ContextSize">K: history items the model reads.</param>
/// <param name="DenseFeatures">Raw dense features a score request must give.</param>
/// <param name="Precision">The encoder Linears' arithmetic.</param>
/// <param name="Recommender">What /recommend serves; null when no <c>--recommender</c> is served.</param>
public sealed record Health(string Status, IReadOnlyList<string> Serves, string? Model, int? Items, int? ContextSize,
    IReadOnlyList<string>? DenseFeatures, string? Precision, RecommenderHealth? Recommender);

/// <summary>The recommender part of <see cref="Health"/>.</summary>
/// <param name="File">The recommender file served.</param>
/// <param name="Items">Items in the recommender's catalogue (the largest k).</param>
/// <param name="HistoryLength">N: the most recent history items the recommender reads.</param>
public sealed record RecommenderHealth(string File, int Items, int HistoryLength);

/// <summary>Builds and runs the host.</summary>
public static class ServingHost
{
    /// <summary>The JSON conventions of responses: snake_case names.</summary>
    public static readonly JsonNamingPolicy Naming = JsonNamingPolicy.SnakeCaseLower;

    /// <summary>Runs the host until SIGTERM / Ctrl+C; a bad option is one line on stderr and exit code 2.</summary>
    public static async Task<int> RunAsync(string[] args)
    {
        WebApplication app;
        try { app = Build(args); }
        catch (Exception e) when (e is ArgumentException or IOException or InvalidDataException or UnauthorizedAccessException)
        {
            Console.Error.WriteLine($"fastrec-serving: {e.Message}");
            return 2;
        }
        await using (app) await app.RunAsync();
        return 0;
    }

    /// <summary>The host over the options in <paramref name="args"/> (see <see cref="ServingOptions"/>); the model is loaded
    /// here, before anything listens.</summary>
    public static WebApplication Build(string[] args)
    {
        var builder = WebApplication.CreateBuilder(args);
        return Build(builder, ServingOptions.From(builder.Configuration));
    }

    /// <summary>The host serving <paramref name="options"/> on <paramref name="builder"/> (tests pass a builder with
    /// <c>--urls http://127.0.0.1:0</c>). Loads the models once; the returned app owns them and disposes them on shutdown.
    /// An endpoint whose model is not configured is not mapped: it answers 404 naming the option to pass.</summary>
    public static WebApplication Build(WebApplicationBuilder builder, ServingOptions options)
    {
        ArgumentNullException.ThrowIfNull(builder); ArgumentNullException.ThrowIfNull(options);
        builder.Logging.AddFilter("Microsoft.AspNetCore", LogLevel.Warning);   // no log line per request
        builder.WebHost.ConfigureKestrel(k =>
        {
            k.Limits.MaxRequestBodySize = options.MaxRequestBytes;
            k.AddServerHeader = false;
        });
        builder.Services.Configure<HostOptions>(h => h.ShutdownTimeout = options.ShutdownTimeout);
        builder.Services.Configure<JsonOptions>(j => j.SerializerOptions.PropertyNamingPolicy = Naming);
        builder.Services.AddSingleton(options);
        if (options.Model is not null)
            builder.Services.AddSingleton(_ => ScoringModel.Load(options));   // created by the container: disposed at shutdown
        if (options.Recommender is not null)
            builder.Services.AddSingleton(_ => LoadRecommender(options.Recommender));
        builder.Services.AddOpenApi();
        builder.Services.AddProblemDetails();

        var app = builder.Build();
        // Load now, not on the first request.
        var model = options.Model is null ? null : app.Services.GetRequiredService<ScoringModel>();
        var recommender = options.Recommender is null ? null : app.Services.GetRequiredService<CatalogRecommender>();
        if (model is not null)
            app.Logger.LogInformation("serving {Model} on POST /score: {Items} items, context size {K}, dense features [{Dense}], {Precision}",
                options.Model, model.Catalog.Count, model.ContextSize, string.Join(", ", model.DenseFeatures), options.Precision);
        if (recommender is not null)
            app.Logger.LogInformation("serving {Recommender} on POST /recommend: {Items} items, history length {N}",
                options.Recommender, recommender.ItemCount, recommender.Scorer.HistoryLength);

        string[] serves = [.. model is null ? Array.Empty<string>() : ["POST /score"], .. recommender is null ? Array.Empty<string>() : ["POST /recommend"],
                           "GET /healthz", "GET /openapi/v1.json"];
        app.UseStatusCodePages(c => ErrorBody(c, serves));
        app.MapOpenApi();
        var health = new Health("ok", serves, model?.ModelDirectory, model?.Catalog.Count, model?.ContextSize, model?.DenseFeatures,
            model is null ? null : options.Precision.ToString().ToLowerInvariant(),
            recommender is null ? null : new RecommenderHealth(options.Recommender!, recommender.ItemCount, recommender.Scorer.HistoryLength));
        app.MapGet("/healthz", () => TypedResults.Ok(health))
            .WithSummary("Liveness and the models served");
        if (model is not null)
            app.MapPost("/score", Score)
                .Accepts<ScoreRequest>("application/json")
                .Produces<ScoreResponse>()
                .ProducesValidationProblem()
                .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
                .ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
                .WithSummary("The probability that a user with this history engages with the candidate");
        if (recommender is not null)
            app.MapPost("/recommend", Recommend)
                .Accepts<RecommendRequest>("application/json")
                .Produces<RecommendResponse>()
                .ProducesValidationProblem()
                .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
                .ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
                .WithSummary("The top k catalogue items for a user with this rated history, best first (never a history item or an excluded one)");
        return app;
    }

    /// <summary>The recommender file, loaded once; a missing file or a folder is named with the option.</summary>
    private static CatalogRecommender LoadRecommender(string path)
    {
        if (Directory.Exists(path)) throw new ArgumentException($"--recommender {path}: is a directory; give the recommender file written by `fastrec tower --out FILE`");
        if (!File.Exists(path)) throw new FileNotFoundException($"--recommender {path}: the file does not exist; write one with `fastrec tower --out FILE`", path);
        return CatalogRecommender.Load(path);
    }

    private static async Task<IResult> Score(HttpContext http, ScoringModel model, ServingOptions options)
    {
        var (doc, error) = await ParseBody(http, options, "invalid score request");
        if (doc is null) return error!;
        using (doc)
        {
            var input = ScoreRequestReader.Read(doc.RootElement, model, out var errors);
            if (input is null) return TypedResults.ValidationProblem(errors, title: "invalid score request");
            float p = model.Score(input.History, input.Candidate, input.Dense);
            return TypedResults.Ok(new ScoreResponse(input.CandidateId, p));
        }
    }

    private static async Task<IResult> Recommend(HttpContext http, CatalogRecommender recommender, ServingOptions options)
    {
        var (doc, error) = await ParseBody(http, options, "invalid recommend request");
        if (doc is null) return error!;
        using (doc)
        {
            using var input = RecommendRequestReader.Read(doc.RootElement, recommender, out var errors);
            if (input is null) return TypedResults.ValidationProblem(errors, title: "invalid recommend request");
            int k = input.K;
            int[] top = ArrayPool<int>.Shared.Rent(k);
            float[] scores = ArrayPool<float>.Shared.Rent(k);
            try
            {
                int n = recommender.TopK(input.History, input.Labels, k, top, input.Exclude, scores);
                var items = new RecommendedItem[n];
                for (int q = 0; q < n; q++) items[q] = new RecommendedItem(recommender.ItemId(top[q]), recommender.ItemText(top[q]), scores[q]);
                return TypedResults.Ok(new RecommendResponse(items));
            }
            finally
            {
                ArrayPool<int>.Shared.Return(top);
                ArrayPool<float>.Shared.Return(scores);
            }
        }
    }

    /// <summary>The request body as JSON, or the error to answer: 413 over the limit (by Content-Length, or Kestrel's
    /// limit while reading a chunked body), 400 naming <c>body</c> when it is not JSON. A Content-Type other than JSON
    /// never gets here (the endpoint's Accepts: 415, see <see cref="ErrorBody"/>).</summary>
    private static async Task<(JsonDocument? Doc, IResult? Error)> ParseBody(HttpContext http, ServingOptions options, string title)
    {
        var request = http.Request;
        if (request.ContentLength > options.MaxRequestBytes) return (null, TooLarge(http, options));
        try
        {
            return (await JsonDocument.ParseAsync(request.Body, new JsonDocumentOptions { MaxDepth = 8 }, http.RequestAborted), null);
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge) { return (null, TooLarge(http, options)); }
        catch (JsonException e)
        {
            return (null, TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["body"] = [$"is not valid JSON: {e.Message}"] }, title: title));
        }
    }

    /// <summary>A problem+json body for the bodiless errors routing answers itself (415 from the endpoint's Accepts
    /// metadata, 404, 405), saying what was expected; an endpoint whose model was not configured is a 404 naming the
    /// option that serves it.</summary>
    private static Task ErrorBody(StatusCodeContext context, string[] serves)
    {
        var http = context.HttpContext;
        int code = http.Response.StatusCode;
        string? path = http.Request.Path.Value?.TrimEnd('/');
        string title = ReasonPhrases.GetReasonPhrase(code);
        string detail = code switch
        {
            StatusCodes.Status415UnsupportedMediaType => $"Content-Type must be application/json, got '{http.Request.ContentType ?? "none"}'",
            StatusCodes.Status404NotFound when string.Equals(path, "/score", StringComparison.OrdinalIgnoreCase) =>
                NotServed("/score", "--model DIR (a FastRec checkpoint from `fastrec train` or `fastrec distill`)", serves, out title),
            StatusCodes.Status404NotFound when string.Equals(path, "/recommend", StringComparison.OrdinalIgnoreCase) =>
                NotServed("/recommend", "--recommender FILE (an item-tower recommender written by `fastrec tower --out FILE`)", serves, out title),
            StatusCodes.Status404NotFound or StatusCodes.Status405MethodNotAllowed =>
                $"no endpoint for {http.Request.Method} {http.Request.Path}: the host serves {Join(serves)}",
            _ => title,
        };
        return TypedResults.Problem(statusCode: code, title: title, detail: detail).ExecuteAsync(http);
    }

    private static string NotServed(string path, string option, string[] serves, out string title)
    {
        title = $"POST {path} is not served by this host";
        return $"POST {path} is not served: the host was started without {option.Split(' ')[0]}; start it with {option} to serve it. It serves {Join(serves)}";
    }

    private static string Join(string[] items) => items.Length == 1 ? items[0] : string.Join(", ", items[..^1]) + " and " + items[^1];

    /// <summary>413, and the connection closed after it: the body is not read (or not to its end), so the connection
    /// cannot carry another request, and a client must not reuse it.</summary>
    private static IResult TooLarge(HttpContext http, ServingOptions options)
    {
        http.Response.Headers.Connection = "close";
        return TypedResults.Problem(statusCode: StatusCodes.Status413PayloadTooLarge, title: "request body too large",
            detail: $"body: the request body exceeds the limit of {options.MaxRequestBytes} bytes (--max-request-bytes)");
    }
}
