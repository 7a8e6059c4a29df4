// The serving host: options, the ASP.NET Core minimal API (POST /score, GET /healthz, the OpenAPI document), limits and shutdown.
using System.Globalization;
using System.Text.Json;
using FastRec.Engine.Serving;
using Microsoft.AspNetCore.Diagnostics;
using Microsoft.AspNetCore.Http.Json;
using Microsoft.AspNetCore.WebUtilities;

namespace FastRec.Serving;

/// <summary>What the host serves and its limits (command line: <c>--model DIR [--items FILE] [--precision float32|int16]
/// [--max-request-bytes N] [--shutdown-seconds S] [--urls URL]</c>; the same keys work as environment variables).</summary>
public sealed record ServingOptions
{
    /// <summary>The FastRec checkpoint directory (from <c>fastrec train</c> or <c>fastrec distill</c>).</summary>
    public required string Model { get; init; }
    /// <summary>An items file to map ids to texts instead of the one the checkpoint's data schema names (null: the schema's).</summary>
    public string? Items { get; init; }
    /// <summary>Arithmetic of the encoder's Linears (<see cref="ServingPrecision.Float32"/>, the model's own numbers, by default).</summary>
    public ServingPrecision Precision { get; init; } = ServingPrecision.Float32;
    /// <summary>Largest request body in bytes (Kestrel's MaxRequestBodySize); a larger one is answered 413. Default 16 KiB.</summary>
    public long MaxRequestBytes { get; init; } = 16 * 1024;
    /// <summary>How long shutdown (SIGTERM, Ctrl+C) waits for requests in flight before it stops. Default 10 s.</summary>
    public TimeSpan ShutdownTimeout { get; init; } = TimeSpan.FromSeconds(10);

    /// <summary>Reads the options from configuration (command line <c>--model</c> etc., or environment variables); errors
    /// name the key and the value.</summary>
    /// <exception cref="ArgumentException">a missing <c>model</c> or a bad value.</exception>
    public static ServingOptions From(IConfiguration config)
    {
        ArgumentNullException.ThrowIfNull(config);
        string model = config["model"] is { Length: > 0 } m ? m : throw new ArgumentException("--model is required: the FastRec checkpoint directory to serve");
        var o = new ServingOptions { Model = model, Items = config["items"] };
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

/// <summary>The <c>GET /healthz</c> answer.</summary>
/// <param name="Status">"ok" once the model is loaded (it is loaded before the host listens).</param>
/// <param name="Model">The checkpoint directory served.</param>
/// <param name="Items">Items in the catalogue.</param>
/// <param name="ContextSize">K: history items the model reads.</param>
/// <param name="DenseFeatures">Raw dense features a score request must give.</param>
/// <param name="Precision">The encoder Linears' arithmetic.</param>
public sealed record Health(string Status, string Model, int Items, int ContextSize, IReadOnlyList<string> DenseFeatures, string Precision);

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
    /// <c>--urls http://127.0.0.1:0</c>). Loads the model once; the returned app owns it and disposes it on shutdown.</summary>
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
        builder.Services.AddSingleton(_ => ScoringModel.Load(options));   // created by the container: disposed at shutdown
        builder.Services.AddOpenApi();
        builder.Services.AddProblemDetails();

        var app = builder.Build();
        var model = app.Services.GetRequiredService<ScoringModel>();   // load now, not on the first request
        app.Logger.LogInformation("serving {Model}: {Items} items, context size {K}, dense features [{Dense}], {Precision}",
            options.Model, model.Catalog.Count, model.ContextSize, string.Join(", ", model.DenseFeatures), options.Precision);

        app.UseStatusCodePages(ErrorBody);
        app.MapOpenApi();
        app.MapGet("/healthz", (ScoringModel m) => TypedResults.Ok(new Health("ok", m.ModelDirectory, m.Catalog.Count, m.ContextSize,
                m.DenseFeatures, options.Precision.ToString().ToLowerInvariant())))
            .WithSummary("Liveness and the model served");
        app.MapPost("/score", Score)
            .Accepts<ScoreRequest>("application/json")
            .Produces<ScoreResponse>()
            .ProducesValidationProblem()
            .ProducesProblem(StatusCodes.Status413PayloadTooLarge)
            .ProducesProblem(StatusCodes.Status415UnsupportedMediaType)
            .WithSummary("The probability that a user with this history engages with the candidate");
        // TODO(issue 16): POST /recommend (history -> top-K over the catalogue) once the item-tower CatalogRecommender exists.
        return app;
    }

    private static async Task<IResult> Score(HttpContext http, ScoringModel model, ServingOptions options)
    {
        var request = http.Request;   // a Content-Type other than JSON never gets here (Accepts: 415, see ErrorBody)
        if (request.ContentLength > options.MaxRequestBytes) return TooLarge(http, options);
        JsonDocument doc;
        try
        {
            doc = await JsonDocument.ParseAsync(request.Body, new JsonDocumentOptions { MaxDepth = 8 }, http.RequestAborted);
        }
        catch (BadHttpRequestException e) when (e.StatusCode == StatusCodes.Status413PayloadTooLarge) { return TooLarge(http, options); }
        catch (JsonException e)
        {
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["body"] = [$"is not valid JSON: {e.Message}"] },
                title: "invalid score request");
        }
        using (doc)
        {
            var input = ScoreRequestReader.Read(doc.RootElement, model, out var errors);
            if (input is null) return TypedResults.ValidationProblem(errors, title: "invalid score request");
            float p = model.Score(input.History, input.Candidate, input.Dense);
            return TypedResults.Ok(new ScoreResponse(input.CandidateId, p));
        }
    }

    /// <summary>A problem+json body for the bodiless errors routing answers itself (415 from the endpoint's Accepts
    /// metadata, 404, 405), saying what was expected.</summary>
    private static Task ErrorBody(StatusCodeContext context)
    {
        var http = context.HttpContext;
        int code = http.Response.StatusCode;
        string detail = code switch
        {
            StatusCodes.Status415UnsupportedMediaType => $"Content-Type must be application/json, got '{http.Request.ContentType ?? "none"}'",
            StatusCodes.Status404NotFound or StatusCodes.Status405MethodNotAllowed =>
                $"no endpoint for {http.Request.Method} {http.Request.Path}: the host serves POST /score, GET /healthz and GET /openapi/v1.json",
            _ => ReasonPhrases.GetReasonPhrase(code),
        };
        return TypedResults.Problem(statusCode: code, title: ReasonPhrases.GetReasonPhrase(code), detail: detail).ExecuteAsync(http);
    }

    /// <summary>413, and the connection closed after it: the body is not read (or not to its end), so the connection
    /// cannot carry another request, and a client must not reuse it.</summary>
    private static IResult TooLarge(HttpContext http, ServingOptions options)
    {
        http.Response.Headers.Connection = "close";
        return TypedResults.Problem(statusCode: StatusCodes.Status413PayloadTooLarge, title: "request body too large",
            detail: $"body: the request body exceeds the limit of {options.MaxRequestBytes} bytes (--max-request-bytes)");
    }
}
