// samples/FastRec.Serving over real HTTP on 127.0.0.1: /healthz, /score against the Predictor, /recommend against the
// CatalogRecommender, bad requests, limits, endpoints not configured, shutdown, smoke load.
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
    private CatalogRecommender _recommender = null!;

    [OneTimeSetUp]
    public async Task Setup()
    {
        _ckpt = new TinyCheckpoint();
        _host = await RunningHost.StartAsync(new ServingOptions { Model = _ckpt.Dir, Recommender = _ckpt.Tower, MaxRequestBytes = Limit });
        _reference = Predictor.Load(_ckpt.Dir);   // a second, independent predictor: the text path, tokenizing per call
        _recommender = CatalogRecommender.Load(_ckpt.Tower);   // a second, independent recommender: its id-based TopK
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

    private async Task<(HttpStatusCode Status, JsonObject Json, string ContentType)> Post(string body, string mediaType = "application/json", string path = "/score")
    {
        using var content = new StringContent(body, Encoding.UTF8, mediaType);
        using var r = await _host.Client.PostAsync(path, content);
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
        Assert.That(j["serves"]!.AsArray().Select(x => x!.GetValue<string>()),
            Is.EqualTo(new[] { "POST /score", "POST /recommend", "GET /healthz", "GET /openapi/v1.json" }));
        Assert.That(j["model"]!.GetValue<string>(), Is.EqualTo(_ckpt.Dir));
        Assert.That(j["items"]!.GetValue<int>(), Is.EqualTo(20));
        Assert.That(j["context_size"]!.GetValue<int>(), Is.EqualTo(TinyCheckpoint.ContextSize));
        Assert.That(j["dense_features"]!.AsArray().Select(x => x!.GetValue<string>()), Is.EqualTo(TinyCheckpoint.Dense));
        Assert.That(j["precision"]!.GetValue<string>(), Is.EqualTo("float32"));
        var rec = j["recommender"]!.AsObject();
        Assert.That(rec["file"]!.GetValue<string>(), Is.EqualTo(_ckpt.Tower));
        Assert.That(rec["items"]!.GetValue<int>(), Is.EqualTo(_recommender.ItemCount).And.EqualTo(20));
        Assert.That(rec["history_length"]!.GetValue<int>(), Is.EqualTo(_recommender.Scorer.HistoryLength));
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
        Assert.That(paths.Select(p => p.Key), Is.SupersetOf(new[] { "/score", "/recommend", "/healthz" }));
        string score = paths["/score"]!.ToJsonString();
        Assert.That(score, Does.Contain("\"400\"").And.Contain("\"413\"").And.Contain("\"415\"").And.Contain("ScoreRequest"));
        string recommend = paths["/recommend"]!.ToJsonString();
        Assert.That(recommend, Does.Contain("\"400\"").And.Contain("\"413\"").And.Contain("\"415\"").And.Contain("RecommendRequest")
            .And.Contain("RecommendResponse").And.Contain("top k catalogue items"));
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
        TrainAssert.Throws<ArgumentException>(() => ServingOptions.From(Config()), "nothing to serve", "--model DIR", "--recommender FILE");
        var r = ServingOptions.From(Config("--recommender", "t.frts"));
        Assert.That((r.Model, r.Recommender), Is.EqualTo(((string?)null, "t.frts")), "/recommend only");
        Assert.That(ServingOptions.From(Config("--model", "m", "--recommender", "t.frts")).Recommender, Is.EqualTo("t.frts"));
        TrainAssert.Throws<ArgumentException>(() => ServingOptions.From(Config("--recommender", "t.frts", "--items", "x.csv")), "--items", "give --model too");
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
            Assert.That(await ServingHost.RunAsync(["--recommender", _ckpt.Items, "--urls", "http://127.0.0.1:0"]), Is.EqualTo(2));
            Assert.That(await ServingHost.RunAsync(["--recommender", Path.Combine(_ckpt.Root, "missing.frts"), "--urls", "http://127.0.0.1:0"]), Is.EqualTo(2));
        }
        finally { Console.SetError(oldErr); }
        TestContext.Out.WriteLine(err.ToString());
        var lines = err.ToString().Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.That(lines, Has.Length.EqualTo(4), "one line each");
        Assert.That(lines[0], Does.Contain("nothing to serve"));
        Assert.That(lines[1], Does.Contain("fastrec.json missing"));
        Assert.That(lines[2], Does.Contain(_ckpt.Items));
        Assert.That(lines[3], Does.Contain("--recommender").And.Contain("missing.frts").And.Contain("does not exist"));
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

    // ---- POST /recommend ----

    private static string RecBody(string[] history, float[]? labels, int k, string[]? exclude = null)
    {
        var o = new JsonObject { ["history"] = new JsonArray([.. history.Select(h => (JsonNode)h)]) };
        if (labels is not null) o["labels"] = new JsonArray([.. labels.Select(l => (JsonNode)l)]);
        o["k"] = k;
        if (exclude is not null) o["exclude"] = new JsonArray([.. exclude.Select(h => (JsonNode)h)]);
        return o.ToJsonString();
    }

    private Task<(HttpStatusCode Status, JsonObject Json, string ContentType)> Recommend(string body, string mediaType = "application/json")
        => Post(body, mediaType, "/recommend");

    /// <summary>The answer's items equal the library's, id, text and score, in order.</summary>
    private static void AssertSameItems(JsonObject answer, Recommendation[] expected)
    {
        var items = answer["items"]!.AsArray();
        Assert.That(items.Select(x => x!["id"]!.GetValue<string>()), Is.EqualTo(expected.Select(x => x.Id)), "ids, best first");
        Assert.That(items.Select(x => x!["score"]!.GetValue<float>()), Is.EqualTo(expected.Select(x => x.Score)), "scores, bit for bit");
        Assert.That(items.Select(x => x!["text"]!.GetValue<string>()), Is.EqualTo(expected.Select(x => x.Text)));
    }

    [Test]
    public async Task RecommendIsTheRecommendersTopKWithoutHistoryOrExcludedItems()
    {
        string[] history = ["i1", "i4", "i6"], exclude = ["i2", "i8"];
        var (status, j, type) = await Recommend(RecBody(history, [1, 0, 1], 5, exclude));
        Assert.That(status, Is.EqualTo(HttpStatusCode.OK), j.ToJsonString());
        Assert.That(type, Is.EqualTo("application/json"));
        var expected = _recommender.TopK(history, [1f, 0f, 1f], 5, exclude);
        Assert.That(expected, Has.Length.EqualTo(5));
        AssertSameItems(j, expected);
        Assert.That(expected.Select(x => x.Text), Has.All.Not.Empty, "the tower file carries the items' texts");
        var ids = j["items"]!.AsArray().Select(x => x!["id"]!.GetValue<string>()).ToArray();
        Assert.That(ids, Has.None.AnyOf([.. history, .. exclude]));
        Assert.That(ids, Is.Unique);

        // The labels reach the recommender: without them every history item is liked, a different user.
        var (_, liked, _) = await Recommend(RecBody(history, null, 5, exclude));
        var allLiked = _recommender.TopK(history, null, 5, exclude);
        AssertSameItems(liked, allLiked);
        Assert.That(allLiked.Select(x => x.Score), Is.Not.EqualTo(expected.Select(x => x.Score)), "i4 disliked vs liked");
    }

    [Test]
    public async Task ANewUserGetsTheWholeCatalogueAndFewerComeBackWhenTheHistoryAndExclusionsTakeSome()
    {
        var (status, j, _) = await Recommend(RecBody([], null, 20));
        Assert.That(status, Is.EqualTo(HttpStatusCode.OK), j.ToJsonString());
        AssertSameItems(j, _recommender.TopK([], null, 20));
        Assert.That(j["items"]!.AsArray(), Has.Count.EqualTo(20));

        (status, j, _) = await Recommend(RecBody(["i3", "i5", "i3"], [0, 1, 0.5f], 20, ["i7", "i5"]));
        Assert.That(status, Is.EqualTo(HttpStatusCode.OK), j.ToJsonString());
        AssertSameItems(j, _recommender.TopK(["i3", "i5", "i3"], [0, 1, 0.5f], 20, ["i7", "i5"]));
        Assert.That(j["items"]!.AsArray(), Has.Count.EqualTo(17), "20 items less i3, i5, i7");
    }

    [Test]
    public async Task AnOverLongHistoryIsFineTheRecommenderReadsItsLastItems()
    {
        int n = _recommender.Scorer.HistoryLength + 30;
        string[] history = [.. Enumerable.Range(0, n).Select(i => $"i{(i * 7) % 20}")];
        var (status, j, _) = await Recommend(RecBody(history, null, 3));
        Assert.That(status, Is.EqualTo(HttpStatusCode.OK), j.ToJsonString());
        AssertSameItems(j, _recommender.TopK(history, null, 3));
    }

    [TestCase("{\"k\":5}", "history", "is required")]
    [TestCase("{\"history\":null,\"k\":5}", "history", "must be an array of item id strings, got null")]
    [TestCase("{\"history\":\"i1\",\"k\":5}", "history", "must be an array of item id strings, got a string")]
    [TestCase("{\"history\":[\"i1\",5],\"k\":5}", "history[1]", "must be an item id string, got the number 5")]
    [TestCase("{\"history\":[\"i1\",\"ghost\",\"i3\",\"spook\",\"ghost\"],\"k\":5}", "history",
              "2 unknown item ids (not in the recommender's catalogue of 20 items; refused, not skipped): 'ghost', 'spook'")]
    [TestCase("{\"history\":[],\"k\":5,\"exclude\":[\"i1\",\"nope\"]}", "exclude", "1 unknown item id (not in the recommender's catalogue of 20 items; refused, not skipped): 'nope'")]
    [TestCase("{\"history\":[],\"k\":5,\"exclude\":\"i1\"}", "exclude", "must be an array of item id strings, got a string")]
    [TestCase("{\"history\":[],\"k\":5,\"exclude\":[true]}", "exclude[0]", "must be an item id string, got true")]
    [TestCase("{\"history\":[]}", "k", "is required: how many items to return, in [1, 20]")]
    [TestCase("{\"history\":[],\"k\":0}", "k", "must be an integer in [1, 20] (the recommender's catalogue has 20 items), got 0")]
    [TestCase("{\"history\":[],\"k\":-3}", "k", "got -3")]
    [TestCase("{\"history\":[],\"k\":21}", "k", "must be an integer in [1, 20] (the recommender's catalogue has 20 items), got 21")]
    [TestCase("{\"history\":[],\"k\":2.5}", "k", "got 2.5")]
    [TestCase("{\"history\":[],\"k\":\"5\"}", "k", "must be an integer in [1, 20], got a string")]
    [TestCase("{\"history\":[\"i1\",\"i2\"],\"labels\":[1],\"k\":5}", "labels", "has 1 label for 2 history items")]
    [TestCase("{\"history\":[],\"labels\":[1],\"k\":5}", "labels", "has 1 label for 0 history items")]
    [TestCase("{\"history\":[\"i1\"],\"labels\":1,\"k\":5}", "labels", "must be an array of numbers in [0, 1], one per history item, got the number 1")]
    [TestCase("{\"history\":[\"i1\"],\"labels\":[1.5],\"k\":5}", "labels[0]", "must be in [0, 1] (liked = 1, disliked = 0), got 1.5")]
    [TestCase("{\"history\":[\"i1\",\"i2\"],\"labels\":[1,-0.1],\"k\":5}", "labels[1]", "must be in [0, 1] (liked = 1, disliked = 0), got -0.1")]
    [TestCase("{\"history\":[\"i1\"],\"labels\":[1e400],\"k\":5}", "labels[0]", "must be in [0, 1]")]
    [TestCase("{\"history\":[\"i1\"],\"labels\":[\"NaN\"],\"k\":5}", "labels[0]", "must be a number in [0, 1], got a string")]
    [TestCase("{\"history\":[\"i1\"],\"labels\":[NaN],\"k\":5}", "body", "is not valid JSON")]
    [TestCase("{\"history\":[],\"k\":5,\"candidate\":\"i1\"}", "candidate", "is not a field of a recommend request (expected history, labels, k, exclude)")]
    [TestCase("[\"i1\"]", "body", "must be a JSON object with history, labels, k, exclude, got an array")]
    [TestCase("{\"history\":[\"i1\"", "body", "is not valid JSON")]
    [TestCase("", "body", "is not valid JSON")]
    public async Task BadRecommendRequestsAre400sNamingTheField(string body, string field, string message)
    {
        var (status, j, type) = await Recommend(body);
        TestContext.Out.WriteLine(j.ToJsonString());
        Assert.That(status, Is.EqualTo(HttpStatusCode.BadRequest));
        Assert.That(type, Is.EqualTo("application/problem+json"));
        Assert.That(j["title"]!.GetValue<string>(), Is.EqualTo("invalid recommend request"));
        var errors = j["errors"]!.AsObject();
        Assert.That(errors.Select(e => e.Key), Is.EqualTo(new[] { field }), "exactly the bad field");
        Assert.That(errors[field]![0]!.GetValue<string>(), Does.Contain(message));
    }

    [Test]
    public async Task EveryBadRecommendFieldIsReportedAtOnceAndTheHostStillServes()
    {
        var (status, j, _) = await Recommend("{\"history\":[\"x\",\"i1\",3],\"labels\":[1,2,\"a\"],\"k\":0,\"exclude\":[\"y\"],\"user\":\"u1\"}");
        Assert.That(status, Is.EqualTo(HttpStatusCode.BadRequest));
        Assert.That(j["errors"]!.AsObject().Select(e => e.Key).Order(StringComparer.Ordinal),
            Is.EqualTo(new[] { "exclude", "history", "history[2]", "k", "labels[1]", "labels[2]", "user" }));
        Assert.That(j["errors"]!["history"]![0]!.GetValue<string>(), Does.Contain("'x'"));
        var (ok, good, _) = await Recommend(RecBody(["i1"], [1], 2));   // the rented buffers went back clean
        Assert.That(ok, Is.EqualTo(HttpStatusCode.OK));
        AssertSameItems(good, _recommender.TopK(["i1"], [1f], 2));
    }

    [Test]
    public async Task RecommendOversizeBodiesAre413AndANonJsonContentTypeIs415()
    {
        string big = RecBody([.. Enumerable.Repeat("i1", 300)], null, 5);   // > 1 KiB
        Assert.That(Encoding.UTF8.GetByteCount(big), Is.GreaterThan(Limit));
        using (var sized = await _host.Client.PostAsync("/recommend", new StringContent(big, Encoding.UTF8, "application/json")))
        {
            Assert.That(sized.StatusCode, Is.EqualTo(HttpStatusCode.RequestEntityTooLarge));
            Assert.That(sized.Headers.ConnectionClose, Is.True);
            var j = JsonNode.Parse(await sized.Content.ReadAsStringAsync())!.AsObject();
            Assert.That(j["detail"]!.GetValue<string>(), Does.Contain("exceeds the limit of 1024 bytes").And.Contain("--max-request-bytes"));
        }
        using var content = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(big)));
        content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        using var req = new HttpRequestMessage(HttpMethod.Post, "/recommend") { Content = content };
        req.Headers.TransferEncodingChunked = true;
        using (var chunked = await _host.Client.SendAsync(req))
            Assert.That(chunked.StatusCode, Is.EqualTo(HttpStatusCode.RequestEntityTooLarge), "chunked, no Content-Length");

        var (status, p, _) = await Recommend(RecBody(["i1"], null, 3), "text/plain");
        Assert.That(status, Is.EqualTo(HttpStatusCode.UnsupportedMediaType));
        Assert.That(p["detail"]!.GetValue<string>(), Does.Contain("Content-Type must be application/json, got 'text/plain"));

        using var get = await _host.Client.GetAsync("/recommend");
        Assert.That(get.StatusCode, Is.EqualTo(HttpStatusCode.MethodNotAllowed));
        Assert.That((await get.Content.ReadAsStringAsync()), Does.Contain("no endpoint for GET /recommend").And.Contain("POST /recommend"));
    }

    [Test]
    public async Task AnEndpointWhoseModelIsNotConfiguredIs404NamingTheOption()
    {
        // /score only: /recommend names --recommender.
        await using (var scoreOnly = await RunningHost.StartAsync(new ServingOptions { Model = _ckpt.Dir }))
        {
            using var r = await scoreOnly.Client.PostAsync("/recommend", new StringContent(RecBody(["i1"], null, 3), Encoding.UTF8, "application/json"));
            Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
            Assert.That(r.Content.Headers.ContentType?.MediaType, Is.EqualTo("application/problem+json"));
            var j = JsonNode.Parse(await r.Content.ReadAsStringAsync())!.AsObject();
            TestContext.Out.WriteLine(j.ToJsonString());
            Assert.That(j["title"]!.GetValue<string>(), Is.EqualTo("POST /recommend is not served by this host"));
            Assert.That(j["detail"]!.GetValue<string>(), Does.Contain("start it with --recommender FILE").And.Contain("fastrec tower --out"));
            using var h = await scoreOnly.Client.GetAsync("/healthz");
            var health = JsonNode.Parse(await h.Content.ReadAsStringAsync())!.AsObject();
            Assert.That(health["recommender"], Is.Null);
            Assert.That(health["serves"]!.AsArray().Select(x => x!.GetValue<string>()), Does.Contain("POST /score").And.Not.Contain("POST /recommend"));
            using var s = await scoreOnly.Client.PostAsync("/score", new StringContent(Body(["i1"], "i2"), Encoding.UTF8, "application/json"));
            Assert.That(s.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        }

        // /recommend only: /score names --model.
        await using var recommendOnly = await RunningHost.StartAsync(new ServingOptions { Recommender = _ckpt.Tower });
        using (var r = await recommendOnly.Client.PostAsync("/score", new StringContent(Body(["i1"], "i2"), Encoding.UTF8, "application/json")))
        {
            Assert.That(r.StatusCode, Is.EqualTo(HttpStatusCode.NotFound));
            var j = JsonNode.Parse(await r.Content.ReadAsStringAsync())!.AsObject();
            Assert.That(j["title"]!.GetValue<string>(), Is.EqualTo("POST /score is not served by this host"));
            Assert.That(j["detail"]!.GetValue<string>(), Does.Contain("start it with --model DIR").And.Contain("POST /recommend"));
        }
        using (var h = await recommendOnly.Client.GetAsync("/healthz"))
        {
            var health = JsonNode.Parse(await h.Content.ReadAsStringAsync())!.AsObject();
            Assert.That(health["status"]!.GetValue<string>(), Is.EqualTo("ok"));
            Assert.That(health["model"], Is.Null);
            Assert.That(health["items"], Is.Null);
            Assert.That(health["recommender"]!["items"]!.GetValue<int>(), Is.EqualTo(20));
            Assert.That(health["serves"]!.AsArray().Select(x => x!.GetValue<string>()), Does.Contain("POST /recommend").And.Not.Contain("POST /score"));
        }
        using var ok = await recommendOnly.Client.PostAsync("/recommend", new StringContent(RecBody(["i1"], null, 3), Encoding.UTF8, "application/json"));
        Assert.That(ok.StatusCode, Is.EqualTo(HttpStatusCode.OK));
        AssertSameItems(JsonNode.Parse(await ok.Content.ReadAsStringAsync())!.AsObject(), _recommender.TopK(["i1"], null, 3));
    }

    [Test]
    public async Task SmokeLoadOnRecommendHasNoErrorsAndEveryAnswerIsTheRecommenders()
    {
        // Two seconds at 8 connections, bounded by count and time; asserts correctness (the pooled buffers shared by
        // concurrent requests give every request its own answer), never speed.
        var cases = Enumerable.Range(0, 6).Select(i =>
        {
            string[] history = [.. Enumerable.Range(0, i).Select(q => $"i{(i * 3 + q * 5) % 20}")];
            float[] labels = [.. Enumerable.Range(0, i).Select(q => q % 2 == 0 ? 1f : 0f)];
            string[] exclude = [$"i{(i * 11) % 20}"];
            int k = 1 + i * 2;
            var expected = _recommender.TopK(history, labels, k, exclude);
            return (Body: RecBody(history, labels, k, exclude), Ids: expected.Select(x => x.Id).ToArray(), Scores: expected.Select(x => x.Score).ToArray());
        }).ToArray();
        var stop = DateTime.UtcNow + TimeSpan.FromSeconds(2);
        int sent = 0, ok = 0;
        var failures = new System.Collections.Concurrent.ConcurrentBag<string>();
        await Task.WhenAll(Enumerable.Range(0, 8).Select(async worker =>
        {
            using var client = new HttpClient { BaseAddress = _host.Address, Timeout = TimeSpan.FromSeconds(30) };
            for (int n = 0; n < 200 && DateTime.UtcNow < stop; n++)
            {
                var c = cases[(worker + n) % cases.Length];
                Interlocked.Increment(ref sent);
                try
                {
                    using var r = await client.PostAsync("/recommend", new StringContent(c.Body, Encoding.UTF8, "application/json"));
                    string text = await r.Content.ReadAsStringAsync();
                    var items = JsonNode.Parse(text)?["items"]?.AsArray();
                    if (r.StatusCode != HttpStatusCode.OK || items is null
                        || !items.Select(x => x!["id"]!.GetValue<string>()).SequenceEqual(c.Ids)
                        || !items.Select(x => x!["score"]!.GetValue<float>()).SequenceEqual(c.Scores))
                        failures.Add($"{(int)r.StatusCode} {text} (expected {string.Join(",", c.Ids)})");
                    else Interlocked.Increment(ref ok);
                }
                catch (Exception e) when (e is HttpRequestException or TaskCanceledException or JsonException) { failures.Add(e.Message); }
            }
        }));
        TestContext.Out.WriteLine($"{sent} requests, {ok} ok");
        Assert.That(failures, Is.Empty);
        Assert.That(ok, Is.EqualTo(sent).And.GreaterThanOrEqualTo(8));
    }
}
