// Compile-time row counts of the serving micro-kernels (PackedLinear, QuantizedLinear): the JIT specialises a tile per count.
namespace FastRec.Kernels.Cpu;

/// <summary>A compile-time row count R in [1, 6]: a kernel generic over it is compiled once per count, with the unused rows
/// dropped, so the last row tile of any M runs exactly M mod 6 rows.</summary>
internal interface ITileRows { static abstract int R { get; } }
internal struct R1 : ITileRows { public static int R => 1; }
internal struct R2 : ITileRows { public static int R => 2; }
internal struct R3 : ITileRows { public static int R => 3; }
internal struct R4 : ITileRows { public static int R => 4; }
internal struct R5 : ITileRows { public static int R => 5; }
internal struct R6 : ITileRows { public static int R => 6; }
