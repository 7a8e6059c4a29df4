// ItemText: MovieTweetings texts parsed and rewritten as "Title (Year). Genres: a, b"; anything else left as it is.
using FastRec.Engine.Representations;

namespace FastRec.Tests.Representations;

public class ItemTextTests
{
    [Test]
    public void FormatRewritesMovieTweetingsTextsAndLeavesOthersUnchanged()
    {
        Assert.That(ItemText.Format("Aliens (1986) | Action, Sci-Fi"), Is.EqualTo("Aliens (1986). Genres: Action, Sci-Fi"));
        Assert.That(ItemText.Format("Fantômas - À l'ombre de la guillotine (1913) | Crime, Drama"),
            Is.EqualTo("Fantômas - À l'ombre de la guillotine (1913). Genres: Crime, Drama"));
        Assert.That(ItemText.Format("Heat (1995)"), Is.EqualTo("Heat (1995)"), "a movie without genres");
        Assert.That(ItemText.Format("good w1 film"), Is.EqualTo("good w1 film"), "a generic text");
        Assert.That(ItemText.Format("a | b"), Is.EqualTo("a | b"), "no year: not a MovieTweetings text");
        Assert.That(ItemText.Format(""), Is.EqualTo(""));
    }

    [Test]
    public void ParseTakesTheLastYearAndTrimsGenres()
    {
        Assert.That(ItemText.TryParseMovie("Foo (2005) (2006) |  Drama ,Film-Noir, ", out var m), Is.True);
        Assert.That(m.Title, Is.EqualTo("Foo (2005)"));
        Assert.That(m.Year, Is.EqualTo(2006));
        Assert.That(m.Genres, Is.EqualTo(new[] { "Drama", "Film-Noir" }));
        Assert.That(ItemText.TryParseMovie("Heat (1995)", out var h), Is.True);
        Assert.That((h.Title, h.Year, h.Genres.Length), Is.EqualTo(("Heat", 1995, 0)));
        Assert.That(ItemText.TryParseMovie("(1995) | Drama", out _), Is.False, "no title");
        Assert.That(ItemText.TryParseMovie("Heat (95) | Drama", out _), Is.False, "a year has four digits");
        Assert.That(ItemText.TryParseMovie("Heat (1995) extended | Drama", out _), Is.False, "the year ends the title");
    }
}
