// Exceptions for malformed or mismatched weights files: each names the file and, where known, the tensor.
namespace FastRec.Engine.Weights;

/// <summary>
/// A weights file (safetensors, ONNX, or a model directory) is malformed or does not match what the model needs.
/// The message always names the file and, when the problem is in one tensor, the tensor.
/// </summary>
public class WeightsFormatException : Exception
{
    /// <summary>The file that is wrong.</summary>
    public string FilePath { get; }

    /// <summary>The tensor that is wrong, or null when the problem is in the file as a whole.</summary>
    public string? TensorName { get; }

    /// <summary>Creates the exception; the message is prefixed with the file (and the tensor, if any).</summary>
    public WeightsFormatException(string filePath, string? tensorName, string problem, Exception? inner = null)
        : base(Format(filePath, tensorName, problem), inner)
    {
        FilePath = filePath;
        TensorName = tensorName;
    }

    private static string Format(string file, string? tensor, string problem) =>
        tensor is null ? $"{file}: {problem}" : $"{file}: tensor '{tensor}': {problem}";
}

/// <summary>A safetensors file (or the model directory around it) is malformed or does not match config.json.</summary>
public sealed class SafetensorsFormatException : WeightsFormatException
{
    /// <inheritdoc cref="WeightsFormatException(string, string?, string, Exception?)"/>
    public SafetensorsFormatException(string filePath, string? tensorName, string problem, Exception? inner = null)
        : base(filePath, tensorName, problem, inner) { }
}

/// <summary>An ONNX file cannot be read, or its graph is not a BERT encoder the converter understands.</summary>
public sealed class OnnxFormatException : WeightsFormatException
{
    /// <inheritdoc cref="WeightsFormatException(string, string?, string, Exception?)"/>
    public OnnxFormatException(string filePath, string? tensorName, string problem, Exception? inner = null)
        : base(filePath, tensorName, problem, inner) { }
}
