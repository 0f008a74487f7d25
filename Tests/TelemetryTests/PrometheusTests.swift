import Coordinator
import Foundation
import RLAIF
import Testing

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

@testable import Telemetry

/// The run's events as Prometheus metrics, served over HTTP.
@Suite struct PrometheusTests {
    static func exposition(_ metrics: RunMetrics) -> String { String(decoding: metrics.exposition(), as: UTF8.self) }

    @Test func events_moveTheMetrics() {
        let m = RunMetrics()
        for w in ["w1", "w2"] {
            m.observe(.init(.workerJoined(worker: w, name: w, host: "h", pid: 1, ring: "r", key: nil), time: 0))
        }
        m.observe(.init(.job(job: 1, kind: "labeling", worker: "w1", attempt: 0, seconds: 0.003), time: 0))
        m.observe(.init(.job(job: 2, kind: "labeling", worker: "w2", attempt: 0, seconds: 0.2), time: 0))
        m.observe(.init(.jobFailed(kind: "rollout", worker: "w2", reason: "x"), time: 0))
        m.observe(.init(.step(version: 7, participants: ["w1", "w2"], epoch: 1, fingerprint: "f"), time: 0))
        m.observe(.init(.labels(phase: "labeling", valid: 5, ambiguous: 2, invalid: 1, retries: 3), time: 0))
        m.observe(.init(.workerLost(worker: "w2", reason: "gone"), time: 0))
        let timings = [
            StepTiming.compute: 0.012, StepTiming.straggler: 0.0007, StepTiming.allReduce: 0.0009,
            StepTiming.update: 0.003,
        ]
        m.observe(
            .init(
                .metrics(.init(phase: "sft", version: 7, gradientNorm: 1, fingerprint: "f", values: timings)), time: 0))
        let text = Self.exposition(m)
        for line in [
            "rlaif_workers_alive 1.0", #"rlaif_jobs_total{kind="labeling"} 2"#,
            #"rlaif_job_failures_total{kind="rollout"} 1"#, "rlaif_policy_version 7.0", "rlaif_steps_total 1",
            #"rlaif_labels_total{status="ambiguous"} 2"#, "rlaif_labeler_retries_total 3",
            "rlaif_labeler_requests_total \((5 + 2 + 1) * 2 + 3)",
            "rlaif_labeler_latency_seconds_count 2", #"rlaif_labeler_latency_seconds_bucket{le="0.005"} 1"#,
            #"rlaif_allreduce_seconds_bucket{le="0.0005"} 0"#, #"rlaif_allreduce_seconds_bucket{le="0.001"} 1"#,
            #"rlaif_step_compute_seconds_bucket{le="0.01"} 0"#, #"rlaif_step_compute_seconds_bucket{le="0.025"} 1"#,
            #"rlaif_step_straggler_seconds_bucket{le="0.0005"} 0"#,
            #"rlaif_step_straggler_seconds_bucket{le="0.001"} 1"#,
            #"rlaif_step_update_seconds_bucket{le="0.0025"} 0"#, #"rlaif_step_update_seconds_bucket{le="0.005"} 1"#,
        ] {
            #expect(text.contains(line + "\n"), "\(line) not in:\n\(text)")
        }
    }

    @Test func jobQueueGauges_areReadAtEachScrape_andAFinishedKindReadsZero() async {
        let m = RunMetrics()
        let batches = Batches([["labeling": .init(queued: 3, running: 2)], [:]])
        m.readOccupancy { await batches.next() }
        let first = String(decoding: await m.scrape(), as: UTF8.self)
        #expect(first.contains(#"rlaif_jobs_queued{kind="labeling"} 3.0"#))
        #expect(first.contains(#"rlaif_jobs_running{kind="labeling"} 2.0"#))
        let second = String(decoding: await m.scrape(), as: UTF8.self)
        #expect(second.contains(#"rlaif_jobs_queued{kind="labeling"} 0.0"#))
    }

    actor Batches {
        var answers: [[String: JobOccupancy]]
        init(_ answers: [[String: JobOccupancy]]) { self.answers = answers }
        func next() -> [String: JobOccupancy] { answers.isEmpty ? [:] : answers.removeFirst() }
    }

    @Test func server_answersMetrics_onTheBoundPort_andRefusesABadBind() async throws {
        let metrics = RunMetrics()
        metrics.observe(.init(.workerJoined(worker: "w1", name: "a", host: "h", pid: 1, ring: "r", key: nil), time: 0))
        let server = try await MetricsServer(bind: "tcp://127.0.0.1:0", metrics: metrics)
        let address = await server.address
        let url = try #require(URL(string: address.replacingOccurrences(of: "tcp://", with: "http://") + "/metrics"))
        let (data, response) = try await URLSession.shared.data(from: url)
        await server.stop()
        #expect((response as? HTTPURLResponse)?.statusCode == 200)
        #expect(String(decoding: data, as: UTF8.self).contains("rlaif_workers_alive 1.0\n"))
        await #expect(throws: MetricsServerError.self) {
            _ = try await MetricsServer(bind: "0.0.0.0:80", metrics: metrics)
        }
    }
}
