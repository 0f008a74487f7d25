import Testing

@testable import RLAIF

@Suite struct StepTimingTests {
    func report(_ timings: [String: Double], fingerprint: String = "f") -> GradientResult {
        GradientResult(
            version: 3, fingerprint: fingerprint, metrics: timings.merging(["loss": 1.5]) { a, _ in a }, gradientNorm: 2
        )
    }

    @Test func oneRank_keepsItsTimings_withoutAStraggler() throws {
        let one = report([StepTiming.compute: 0.02, StepTiming.allReduce: 0.0003, StepTiming.update: 0.001])
        let merged = try #require(StepTiming.merged([one]))
        #expect(merged == one)
        #expect(merged.metrics[StepTiming.straggler] == nil)
    }

    @Test func threeRanks_slowestComputeAndUpdate_leastAllReduce_andTheSpread() throws {
        let reports = [
            report([StepTiming.compute: 0.011, StepTiming.allReduce: 0.0030, StepTiming.update: 0.0010]),
            report([StepTiming.compute: 0.014, StepTiming.allReduce: 0.0009, StepTiming.update: 0.0011]),
            report([StepTiming.compute: 0.012, StepTiming.allReduce: 0.0021, StepTiming.update: 0.0009]),
        ]
        let merged = try #require(StepTiming.merged(reports))
        #expect(merged.metrics[StepTiming.compute] == 0.014)
        #expect(merged.metrics[StepTiming.allReduce] == 0.0009)
        #expect(merged.metrics[StepTiming.update] == 0.0011)
        #expect(abs(merged.metrics[StepTiming.straggler]! - 0.003) < 1e-12)
        #expect(merged.metrics["loss"] == 1.5)
        #expect(merged.version == 3 && merged.fingerprint == "f" && merged.gradientNorm == 2)
    }

    @Test func noReports_mergeToNothing() {
        #expect(StepTiming.merged([]) == nil)
    }
}
