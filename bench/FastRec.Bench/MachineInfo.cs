// What machine a benchmark ran on: the CPU model, its vector ISA and the load average, printed beside every figure.
using System.Runtime.Intrinsics;
using System.Runtime.Intrinsics.X86;

namespace FastRec.Bench;

/// <summary>Machine facts read from /proc (Linux); "unknown"/"n/a" elsewhere.</summary>
internal static class MachineInfo
{
    /// <summary>How FastRec's CPU workers wait between parallel regions (CpuParallel.SpinMicroseconds, FASTREC_SPIN_US).</summary>
    public static string FastRecSpinning()
    {
        int us = FastRec.Kernels.Cpu.CpuParallel.SpinMicroseconds;
        return us > 0 ? $"bounded: spin {us} us after a parallel region, then block (FASTREC_SPIN_US)"
                      : "brief (200 spins on a ManualResetEventSlim, then blocks)";
    }

    public static string CpuModel()
    {
        try
        {
            // "AMD EPYC" alone (what a VM shows) does not say Zen 3, 4 or 5: add the family and model numbers.
            string? name = null, family = null, model = null;
            foreach (string line in File.ReadLines("/proc/cpuinfo"))
            {
                string Value() => line[(line.IndexOf(':') + 1)..].Trim();
                if (name is null && line.StartsWith("model name", StringComparison.Ordinal)) name = Value();
                else if (family is null && line.StartsWith("cpu family", StringComparison.Ordinal)) family = Value();
                else if (model is null && line.StartsWith("model", StringComparison.Ordinal) && !line.StartsWith("model name", StringComparison.Ordinal)) model = Value();
                if (name is not null && family is not null && model is not null) break;
            }
            if (name is not null)
            {
                string zen = family switch { "25" => ", Zen 3/Zen 4", "26" => ", Zen 5", _ => "" };
                return family is null ? name : $"{name} (family {family}, model {model}{(name.Contains("AMD", StringComparison.Ordinal) ? zen : "")})";
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return "unknown CPU";
    }

    public static string LoadAverage()
    {
        try { return string.Join(" ", File.ReadAllText("/proc/loadavg").Split(' ').Take(3)); }
        catch (IOException) { return "n/a"; }
        catch (UnauthorizedAccessException) { return "n/a"; }
    }

    /// <summary>The vector ISA the runtime uses here: AVX2, FMA, AVX-512 F/BW/VL/VNNI/BF16 (x86), AdvSimd (Arm), and whether
    /// Vector512 is hardware accelerated (.NET may leave it off on CPUs that throttle at 512 bits).</summary>
    public static string[] Isa()
    {
        var isa = new List<string>();
        if (Avx2.IsSupported) isa.Add("AVX2");
        if (Fma.IsSupported) isa.Add("FMA");
        if (Avx512F.IsSupported) isa.Add("AVX-512F");
        if (Avx512BW.IsSupported) isa.Add("AVX-512BW");
        if (Avx512F.VL.IsSupported) isa.Add("AVX-512VL");
        if (AvxVnni.IsSupported) isa.Add("AVX-VNNI");
        if (Avx512Vbmi.IsSupported) isa.Add("AVX-512VBMI");
        if (System.Runtime.Intrinsics.Arm.AdvSimd.IsSupported) isa.Add("AdvSimd");
        isa.Add(Vector512.IsHardwareAccelerated ? "Vector512-accelerated" : "Vector512-not-accelerated");
        return isa.ToArray();
    }
}
