// Entry point of the lean device-check program: `FastRec.DeviceCheck [options]` = `FastRec.Bench device [options]`.
namespace FastRec.Bench;

public static class DeviceCheckProgram
{
    public static int Main(string[] args) => DeviceCheck.Run(["device", .. args]);
}
