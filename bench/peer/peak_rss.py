"""Peak resident memory of this process (Linux /proc), shared by the peers."""


def reset_peak():
    """Resets VmHWM to the current RSS (writing 5 to clear_refs); a no-op where unsupported."""
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
    except OSError:
        pass


def peak_mib():
    """VmHWM in MiB, 0.0 where /proc has no such line."""
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0
