"""The probe families, one module per MIM (and operations). Each has `probes(platform)`, yielding
its probes in the order they run; some also have `sweep(platform)`, which removes what an earlier,
interrupted run left behind."""
