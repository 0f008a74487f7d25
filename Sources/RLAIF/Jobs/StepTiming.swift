/// Where a gradient step's time went, as its ranks report it in `GradientResult.metrics`.
///
/// Each rank times its own share; the coordinator merges the reports (`merged`) so that the
/// logged figures add up to the step as the ring lived it.
public enum StepTiming {
    /// Forward and backward passes over the rank's micro-batches, into its exact sum.
    public static let compute = "compute_seconds"
    /// The ring all-reduce (with one rank: turning its exact sum into floats). A rank that
    /// arrives early also waits in it for the others, so the merged figure is the last rank's:
    /// the ring's own time.
    public static let allReduce = "allreduce_seconds"
    /// The optimizer update and the weights' fingerprint.
    public static let update = "update_seconds"
    /// How much longer the slowest rank computed than the fastest: what the others waited.
    public static let straggler = "straggler_seconds"

    /// One report of a step with the timings of all of them: compute and update of the slowest
    /// rank, the all-reduce of the rank that waited least, and the spread of compute. The metric
    /// sums, version and fingerprint are the first report's (every rank reports the same).
    public static func merged(_ reports: [GradientResult]) -> GradientResult? {
        guard var result = reports.first else { return nil }
        func all(_ key: String) -> [Double] { reports.compactMap { $0.metrics[key] } }
        let computes = all(compute)
        if let slowest = computes.max(), let fastest = computes.min() {
            result.metrics[compute] = slowest
            if reports.count > 1 { result.metrics[straggler] = slowest - fastest }
        }
        if let least = all(allReduce).min() { result.metrics[allReduce] = least }
        if let slowest = all(update).max() { result.metrics[update] = slowest }
        return result
    }
}
