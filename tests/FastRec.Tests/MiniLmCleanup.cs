// Removes the MiniLM folder that the Weights tests convert into, after every test under FastRec.Tests has run.
using FastRec.Tests.Weights;

namespace FastRec.Tests;

/// <summary>Removes the converted MiniLM folder after the run (any test in FastRec.Tests.* may have created it).</summary>
[SetUpFixture]
public class MiniLmCleanup
{
    [OneTimeTearDown]
    public void RemoveConvertedModel()
    {
        if (MiniLm.Created && Directory.Exists(MiniLm.Dir)) Directory.Delete(MiniLm.Dir, recursive: true);
    }
}
