// samples/FastRec.Serving over real HTTP on 127.0.0.1: /healthz, /score against the Predictor, bad requests, limits, shutdown, smoke load.
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using FastRec.Engine.Serving;
using FastRec.Serving;
using FastRec.Tests.Training;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.Configuration;

namespace FastRec.Tests.Samples;

[NonParallelizable]
public class ServingHostTests
{
    private const long Limit = 1024;
    private TinyCheckpoint _ckpt = null!;
    private RunningHost _host = null!;
    private Predictor _reference = null!;

    [OneTimeSetUp]
    public async Task Setup()
    {
        _ckpt = new TinyCheckpoint();
        _host = await RunningHost.StartAsync(new ServingOptions { Model = _ckpt.Dir, MaxRequestBytes = Limit });
        _reference = Predictor.Load(_ckpt.Dir);   // a second, independent predictor: the text path, tokenizing per call
    }

    [OneTimeTearDown]
    public async Task TearDown()
    {
        _reference.Dispose();
        await _host.DisposeAsync();
        _ckpt.Dispose();
    }

    // The synthetic items: i{n} has the text "{good|bad} w{n % 12} {film|show}" (good for even n, film for n % 3 == 0).
    private static string Text(int n) => $"{(n % 2 == 0 ? "good" : "bad")} w{n % 12} {(n % 3 == 0 ? "film" : "show")}";

    private static string Body(string[] history, string candidate, double score = 0.75, double age = -1.5)
        => new JsonObject
        {
            ["history"] = new JsonArray([.. history.Select(h => (JsonNode)h)]),
            ["candidate"] = candidate,
            ["dense"] = new JsonObject { ["score"] = score, ["age"] = age },
        }.ToJsonString();

    private async Task<(HttpStatusCode Status, JsonObject Json, string ContentType)> Post(string body, string mediaType = "application/json")
    {
        using var content = new StringContent(body, Encoding.UTF8, mediaType);
        using var r = await _host.Client.PostAsync("/score", content);
        string text = await r.Content.ReadAsStringAsync();
        return (r.StatusCode, JsonNode.Parse(text)!.AsObject(), r.Content.Headers.ContentType?.MediaType ?? "");
    }

    [Test]
    public async Task HealthzDescribesTheModelServed()
    {
        using var r = await _host.Client.GetAsync("/healthz");
        Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        var j = JsonNode.Parse(await r.Content.ReadAsStringAsync())!.AsObject();
        Assert.That(j["status"]!.GetValue<string>(), Is.EqualTo("ok"));
        Assert.That(j["model"]!.GetValue<string>(), Is.EqualTo(_ckpt.Dir));
        Assert.That(j["items"]!.GetValue<int>(), Is.EqualTo(20));
        Assert.That(j["context_size"]!.GetValue<int>(), Is.EqualTo(TinyCheckpoint.ContextSize));
        Assert.That(j["dense_features"]!.AsArray().Select(x => x!.GetValue<string>()), Is.EqualTo(TinyCheckpoint.Dense));
        Assert.That(j["precision"]!.GetValue<string>(), Is.EqualTo("float32"));
    }

    [Test]
    public async Task ScoreIsThePredictorsProbabilityForTheItemsTexts()
    {
        var (status, j, type) = await Post(Body(["i4", "i7"], "i9", score: 0.75, age: -1.5));
        Assert.That(status, Is.EqualTo(HttpStatusCode.OK), j.ToJsonString());
        Assert.That(type, Is.EqualTo("application/json"));
        Assert.That(j["candidate"]!.GetValue<string>(), Is.EqualTo("i9"));
        float expected = _reference.Score([Text(4), Text(7)], Text(9), [0.75f, -1.5f]);
        Assert.That(j["probability"]!.GetValue<float>(), Is.EqualTo(expected), "the same model, bit for bit");
        Assert.That(expected, Is.GreaterThan(0f).And.LessThan(1f));
    }

    [Test]
    public async Task OnlyTheFirstKHistoryItemsAreReadAndAnEmptyHistoryIsAllowed()
    {
        var (_, three, _) = await Post(Body(["i4", "i7", "i1"], "i9"));
        var (_, two, _) = await Post(Body(["i4", "i7"], "i9"));
        Assert.That(three["probability"]!.GetValue<float>(), Is.EqualTo(two["probability"]!.GetValue<float>()), "K = 2: i1 is beyond the context");
        var (status, none, _) = await Post(Body([], "i9"));
        Assert.That(status, Is.EqualTo(HttpStatusCode.OK));
        Assert.That(none["probability"]!.GetValue<float>(), Is.EqualTo(_reference.Score([], Text(9), [0.75f, -1.5f])));
    }

    [Test]
    public async Task DenseFeaturesAreStandardisedLikeTraining()
    {
        // Raw (score, age) = (0.5, 0) is the scaler's mean: the head sees zeros, exactly as for a bare-model predictor fed 0.
        var (_, j, _) = await Post(Body(["i2"], "i3", score: 0.5, age: 0));
        Assert.That(j["probability"]!.GetValue<float>(), Is.EqualTo(_reference.Score([Text(2)], Text(3), [0.5f, 0f])));
        var (_, k, _) = await Post(Body(["i2"], "i3", score: 1.0, age: 0));
        Assert.That(k["probability"]!.GetValue<float>(), Is.Not.EqualTo(j["probability"]!.GetValue<float>()), "the feature reaches the head");
    }

    private const string D = "\"dense\":{\"score\":1,\"age\":2}";

    [TestCase("{\"candidate\":\"i1\"," + D + "}", "history", "is required")]
    [TestCase("{\"history\":\"i1\",\"candidate\":\"i1\"," + D + "}", "history", "must be an array of item id strings, got a string")]
    [TestCase("{\"history\":[\"i1\",5],\"candidate\":\"i1\"," + D + "}", "history[1]", "must be an item id string, got the number 5")]
    [TestCase("{\"history\":[\"i1\",\"nope\"],\"candidate\":\"i1\"," + D + "}", "history[1]", "unknown item id 'nope'")]
    [TestCase("{\"history\":[]," + D + "}", "candidate", "is required")]
    [TestCase("{\"history\":[],\"candidate\":\"i20\"," + D + "}", "candidate", "unknown item id 'i20'")]
    [TestCase("{\"history\":[],\"candidate\":{\"id\":\"i1\"}," + D + "}", "candidate", "must be an item id string, got an object")]
    [TestCase("{\"history\":[],\"candidate\":\"i1\"}", "dense", "is required: an object with the raw dense features score, age")]
    [TestCase("{\"history\":[],\"candidate\":\"i1\",\"dense\":[1,2]}", "dense", "must be an object of feature name -> number, got an array")]
    [TestCase("{\"history\":[],\"candidate\":\"i1\",\"dense\":{\"score\":\"1\",\"age\":2}}", "dense.score", "must be a number, got a string")]
    [TestCase("{\"history\":[],\"candidate\":\"i1\",\"dense\":{\"score\":1}}", "dense.age", "is required")]
    [TestCase("{\"history\":[],\"candidate\":\"i1\",\"dense\":{\"score\":1,\"age\":2,\"height\":3}}", "dense.height", "is not a feature of this model (it takes score, age)")]
    [TestCase("{\"history\":[],\"candidate\":\"i1\",\"dense\":{\"score\":1e300,\"age\":2}}", "dense.score", "must be a finite number in float range, got 1e300")]
    [TestCase("{\"histroy\":[],\"history\":[],\"candidate\":\"i1\"," + D + "}", "histroy", "is not a field of a score request (expected history, candidate, dense)")]
    [TestCase("[\"i1\"]", "body", "must be a JSON object with history, candidate, dense, got an array")]
    [TestCase("{\"history\":[\"i1\"", "body", "is not valid JSON")]
    [TestCase("", "body", "is not valid JSON")]
    public async Task BadRequestsAre400sNamingTheField(string body, string field, string message)
    {
        var (status, j, type) = await Post(body);
        TestContext.Out.WriteLine(j.ToJsonString());
        Assert.That(status, Is.EqualTo(HttpStatusCode.BadRequest));
        Assert.That(type, Is.EqualTo("application/problem+json"));
        var errors = j["errors"]!.AsObject();
        Assert.That(errors.Select(e => e.Key), Is.EqualTo(new[] { field }), "exactly the bad field");
        Assert.That(errors[field]![0]!.GetValue<string>(), Does.Contain(message));
    }

    [Test]
    public async Task EveryBadFieldIsReportedAtOnce()
    {
        var (status, j, _) = await Post("{\"history\":[\"x\",\"i1\",\"y\"],\"candidate\":7,\"dense\":{\"score\":true}}");
        Assert.That(status, Is.EqualTo(HttpStatusCode.BadRequest));
        Assert.That(j["errors"]!.AsObject().Select(e => e.Key).Order(),
            Is.EqualTo(new[] { "candidate", "dense.age", "dense.score", "history[0]", "history[2]" }));
    }

    [Test]
    public async Task OversizeBodiesAre413WithAndWithoutContentLength()
    {
        string big = Body([.. Enumerable.Repeat("i1", 200)], "i2");   // > 1 KiB
        Assert.That(Encoding.UTF8.GetByteCount(big), Is.GreaterThan(Limit));
        using (var sized = await _host.Client.PostAsync("/score", new StringContent(big, Encoding.UTF8, "application/json")))
        {
            Assert.That(sized.StatusCode, Is.EqualTo(HttpStatusCode.RequestEntityTooLarge));
            Assert.That(sized.Headers.ConnectionClose, Is.True, "the unread body leaves the connection unusable: the client is told not to reuse it");
            var j = JsonNode.Parse(await sized.Content.ReadAsStringAsync())!.AsObject();
            Assert.That(j["detail"]!.GetValue<string>(), Does.Contain("exceeds the limit of 1024 bytes"));
        }

        // Chunked (no Content-Length): Kestrel stops reading at the limit.
        using var content = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(big)));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var req = new HttpRequestMessage(HttpMethod.Post, "/score") { Content = content };
        req.Headers.TransferEncodingChunked = true;
        using var r = await _host.Client.SendAsync(req);
        Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.RequestEntityTooLarge));
        Assert.That(r.Headers.ConnectionClose, Is.True);

        var (ok, _, _) = await Post(Body([.. Enumerable.Repeat("i1", 20)], "i2"));   // under the limit
        Assert.That(ok, Is.EqualTo(HttpStatusCode.OK), "a body under the limit still scores");
    }

    [Test]
    public async Task ANonJsonContentTypeIs415()
    {
        var (status, j, _) = await Post(Body(["i1"], "i2"), "text/plain");
        Assert.That(status, Is.EqualTo(HttpStatusCode.UnsupportedMediaType));
        Assert.That(j["detail"]!.GetValue<string>(), Does.Contain("Content-Type must be application/json, got 'text/plain"));
    }

    [Test]
    public async Task UnknownPathsAndMethodsSayWhatTheHostServes()
    {
        foreach (var (method, path, code) in new[] { ("GET", "/nowhere", HttpStatusCode.NotFound), ("GET", "/score", HttpStatusCode.MethodNotAllowed) })
        {
            using var r = await _host.Client.SendAsync(new HttpRequestMessage(new HttpMethod(method), path));
            Assert.That(r.StatusCode, Is.EqualTo(code), path);
            var j = JsonNode.Parse(await r.Content.ReadAsStringAsync())!.AsObject();
            Assert.That(j["detail"]!.GetValue<string>(), Does.Contain($"no endpoint for {method} {path}").And.Contain("POST /score"));
        }
    }

    [Test]
    public async Task TheOpenApiDocumentDescribesTheEndpoints()
    {
        using var r = await _host.Client.GetAsync("/openapi/v1.json");
        Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        var doc = JsonNode.Parse(await r.Content.ReadAsStringAsync())!.AsObject();
        var paths = doc["paths"]!.AsObject();
        Assert.That(paths.Select(p => p.Key), Is.SupersetOf(new[] { "/score", "/healthz" }));
        string score = paths["/score"]!.ToJsonString();
        Assert.That(score, Does.Contain("\"400\"").And.Contain("\"413\"").And.Contain("ScoreRequest"));
    }

    [Test]
    public async Task SmokeLoadHasNoErrorsAndEveryResponseIsTheExpectedScore()
    {
        // A few seconds at 8 connections, bounded by count and time; asserts correctness only, never speed.
        var bodies = Enumerable.Range(0, 6).Select(i => (Body: Body([$"i{i}", $"i{(i + 5) % 20}"], $"i{(i * 7) % 20}", 0.1 * i, i - 3.0),
            Expected: _reference.Score([Text(i), Text((i + 5) % 20)], Text((i * 7) % 20), [(float)(0.1 * i), i - 3f]))).ToArray();
        var stop = DateTime.UtcNow + TimeSpan.FromSeconds(3);
        int sent = 0, ok = 0;
        var failures = new System.Collections.Concurrent.ConcurrentBag<string>();
        await Task.WhenAll(Enumerable.Range(0, 8).Select(async worker =>
        {
            using var client = new HttpClient { BaseAddress = _host.Address, Timeout = TimeSpan.FromSeconds(30) };
            for (int n = 0; n < 250 && DateTime.UtcNow < stop; n++)
            {
                var (body, expected) = bodies[(worker + n) % bodies.Length];
                Interlocked.Increment(ref sent);
                try
                {
                    using var r = await client.PostAsync("/score", new StringContent(body, Encoding.UTF8, "application/json"));
                    string text = await r.Content.ReadAsStringAsync();
                    var j = JsonNode.Parse(text)?.AsObject();
                    if (r.StatusCode != HttpStatusCode.OK || j?["probability"]?.GetValue<float>() != expected)
                        failures.Add($"{(int)r.StatusCode} {text} (expected {expected})");
                    else Interlocked.Increment(ref ok);
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException) { failures.Add(e.Message); }
            }
        }));
        TestContext.Out.WriteLine($"{sent} requests, {ok} ok");
        Assert.That(failures, Is.Empty);
        Assert.That(ok, Is.EqualTo(sent).And.GreaterThanOrEqualTo(8));
    }

    [Test]
    public async Task ShutdownFinishesTheRequestInFlightThenStopsListening()
    {
        var arrived = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var host = await RunningHost.StartAsync(new ServingOptions { Model = _ckpt.Dir },
            app => app.Use(async (ctx, next) => { arrived.TrySetResult(); await next(ctx); }));
        try
        {
            string body = Body(["i4"], "i9");
            var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            using var content = new HalfThenRest(Encoding.UTF8.GetBytes(body), release.Task);
            var inFlight = host.Client.PostAsync("/score", content);
            await arrived.Task.WaitAsync(TimeSpan.FromSeconds(30));   // the request is in the pipeline, its body half sent

            var stopping = host.App.StopAsync();
            Assert.That(stopping.IsCompleted, Is.False, "shutdown waits for the request in flight");
            release.SetResult();
            using var r = await inFlight;
            Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.OK));
            var j = JsonNode.Parse(await r.Content.ReadAsStringAsync())!.AsObject();
            Assert.That(j["probability"]!.GetValue<float>(), Is.EqualTo(_reference.Score([Text(4)], Text(9), [0.75f, -1.5f])));
            await stopping.WaitAsync(TimeSpan.FromSeconds(30));

            using var fresh = new HttpClient { BaseAddress = host.Address };
            Assert.ThrowsAsync<HttpRequestException>(() => fresh.GetAsync("/healthz"), "no longer listening");
        }
        finally { await host.DisposeAsync(); }
    }

    /// <summary>A JSON body sent in two halves, the second once <c>release</c> completes (Content-Length known upfront).</summary>
    private sealed class HalfThenRest : HttpContent
    {
        private readonly byte[] _bytes;
        private readonly Task _release;

        public HalfThenRest(byte[] bytes, Task release)
        {
            _bytes = bytes; _release = release;
            Headers.ContentType = new MediaTypeHeaderValue("application/json");
        }

        protected override async Task SerializeToStreamAsync(Stream stream, TransportContext? context)
        {
            int half = _bytes.Length / 2;
            await stream.WriteAsync(_bytes.AsMemory(0, half));
            await stream.FlushAsync();
            await _release;
            await stream.WriteAsync(_bytes.AsMemory(half));
        }

        protected override bool TryComputeLength(out long length) { length = _bytes.Length; return true; }
    }

    [Test]
    public void OptionsComeFromTheCommandLineAndBadValuesNameTheFlag()
    {
        static IConfiguration Config(params string[] args) => new ConfigurationBuilder().AddCommandLine(args).Build();
        var o = ServingOptions.From(Config("--model", "m", "--items", "x.csv", "--precision", "int16", "--max-request-bytes", "4096", "--shutdown-seconds", "2.5"));
        Assert.That((o.Model, o.Items, o.Precision, o.MaxRequestBytes, o.ShutdownTimeout),
            Is.EqualTo(("m", "x.csv", ServingPrecision.Int16, 4096L, TimeSpan.FromSeconds(2.5))));
        Assert.That(ServingOptions.From(Config("--model", "m")).MaxRequestBytes, Is.EqualTo(16 * 1024), "default 16 KiB");
        TrainAssert.Throws<ArgumentException>(() => ServingOptions.From(Config()), "--model is required");
        TrainAssert.Throws<ArgumentException>(() => ServingOptions.From(Config("--model", "m", "--precision", "int8")), "--precision", "'int8'");
        TrainAssert.Throws<ArgumentException>(() => ServingOptions.From(Config("--model", "m", "--max-request-bytes", "10")), "--max-request-bytes", "'10'");
        TrainAssert.Throws<ArgumentException>(() => ServingOptions.From(Config("--model", "m", "--shutdown-seconds", "-1")), "--shutdown-seconds", "'-1'");
    }

    [Test]
    public async Task StartingWithoutAModelOrOnANonCheckpointIsExitCode2NamingTheProblem()
    {
        var oldErr = Console.Error;
        var err = new StringWriter();
        Console.SetError(err);
        try
        {
            Assert.That(await ServingHost.RunAsync([]), Is.EqualTo(2));
            Assert.That(await ServingHost.RunAsync(["--model", _ckpt.Root, "--urls", "http://127.0.0.1:0"]), Is.EqualTo(2));
        }
        finally { Console.SetError(oldErr); }
        Assert.That(err.ToString(), Does.Contain("--model is required").And.Contain("fastrec.json missing"));
    }

    [Test]
    public async Task AnItemsFileOtherThanTheCheckpointsCanBeServed()
    {
        string items = Path.Combine(_ckpt.Root, "more-items.csv");
        File.WriteAllLines(items, ["item,title", "new1,good w1 film", "new2,bad w2 show"]);
        await using var host = await RunningHost.StartAsync(new ServingOptions { Model = _ckpt.Dir, Items = items });
        using var r = await host.Client.PostAsync("/score", new StringContent(Body(["new1"], "new2"), Encoding.UTF8, "application/json"));
        Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        var j = JsonNode.Parse(await r.Content.ReadAsStringAsync())!.AsObject();
        Assert.That(j["probability"]!.GetValue<float>(), Is.EqualTo(_reference.Score(["good w1 film"], "bad w2 show", [0.75f, -1.5f])));
        using var old = await host.Client.PostAsync("/score", new StringContent(Body([], "i1"), Encoding.UTF8, "application/json"));
        Assert.That(old.StatusCode, Is.EqualTo(HttpStatusCode.BadRequest), "i1 is not in that catalogue");
    }
}
