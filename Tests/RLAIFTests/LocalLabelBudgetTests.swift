import Foundation
import TestSupport
import Testing

@testable import RLAIF

/// The in-process cluster keeps one labeler budget for all its replicas, as the coordinator does
/// for its workers.
@Suite struct LocalLabelBudgetTests {
    @Test func replicasShareOneBudget_andTheServerNeverSeesItExceeded() async throws {
        let server = try await StandInServer.start()
        var settings = RunSettings()
        settings.labeler.kind = .openai
        settings.labeler.url = server.url.absoluteString
        settings.labeler.model = "standin"
        settings.labeler.apiKeyEnv = ""
        settings.labeler.requestsPerMinute = 12
        settings.labeler.budgetWindowMs = 1000
        let cluster = try LocalCluster(settings: settings, replicas: 2)
        let pairs = (0..<16).map {
            LabelingPair(id: UInt64($0), prompt: "Text - abCD", first: "cd.", second: "ab.")
        }
        // Four jobs, dealt to the two replicas in turn.
        let jobs = stride(from: 0, to: 16, by: 4).map { Job.labeling(LabelingSpec(pairs: Array(pairs[$0..<($0 + 4)]))) }
        let outputs = try await cluster.runJobs(jobs)
        #expect(outputs.count == 4)
        let stats = try await server.stats()
        #expect(stats.requests >= 32)  // both orders of 16 pairs, and any retries
        #expect(stats.mostWithin(1.0) <= 12, "\(stats.mostWithin(1.0)) requests within a second")
    }
}
