// Engine assembly facts.
namespace FastRec.Engine;

/// <summary>Engine version.</summary>
public static class EngineInfo { public const string Version = "0.1.0"; }
