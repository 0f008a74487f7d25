import Foundation

/// The field list of each event line (a codec's field list: one case per event).
extension RunEvent {
    static let metricsFixedKeys: Set<String> = [
        "event", "t", "phase", "version", "grad_norm", "fingerprint", "checksum",
    ]

    // size: field list
    func encodeFields(into c: inout KeyedEncodingContainer<EventKey>) throws {
        switch self {
        case .runStarted(let name, let seed, let coordinator):
            try c.encode(name, forKey: "name")
            try c.encode(seed, forKey: "seed")
            try c.encode(coordinator, forKey: "coordinator")
        case .resumed(let phase, let done, let version):
            try c.encode(phase, forKey: "phase")
            try c.encode(done, forKey: "done")
            try c.encode(version, forKey: "version")
        case .phase(let phase):
            try c.encode(phase, forKey: "phase")
        case .workerJoined(let worker, let name, let host, let pid, let ring, let key):
            try c.encode(worker, forKey: "worker")
            try c.encode(name, forKey: "name")
            try c.encode(host, forKey: "host")
            try c.encode(pid, forKey: "pid")
            try c.encode(ring, forKey: "ring")
            try c.encode(key, forKey: "key")
        case .workerLost(let worker, let reason):
            try c.encode(worker, forKey: "worker")
            try c.encode(reason, forKey: "reason")
        case .job(let job, let kind, let worker, let attempt, let seconds):
            try c.encode(job, forKey: "job")
            try c.encode(kind, forKey: "kind")
            try c.encode(worker, forKey: "worker")
            try c.encode(attempt, forKey: "attempt")
            try c.encode((seconds * 1e4).rounded() / 1e4, forKey: "seconds")
        case .jobFailed(let kind, let worker, let reason):
            try c.encode(kind, forKey: "kind")
            try c.encode(worker, forKey: "worker")
            try c.encode(reason, forKey: "reason")
        case .step(let version, let participants, let epoch, let fingerprint):
            try c.encode(version, forKey: "version")
            try c.encode(participants, forKey: "participants")
            try c.encode(epoch, forKey: "epoch")
            try c.encode(fingerprint, forKey: "fingerprint")
        case .stepRetry(let version, let epoch):
            try c.encode(version, forKey: "version")
            try c.encode(epoch, forKey: "epoch")
        case .snapshot(let version, let from, let purpose):
            try c.encode(version, forKey: "version")
            try c.encode(from, forKey: "from")
            try c.encode(purpose, forKey: "purpose")
        case .synchronized(let worker, let version):
            try c.encode(worker, forKey: "worker")
            try c.encode(version, forKey: "version")
        case .broadcast(let version, let from, let chain):
            try c.encode(version, forKey: "version")
            try c.encode(from, forKey: "from")
            try c.encode(chain, forKey: "chain")
        case .metrics(let m):
            try c.encode(m.phase, forKey: "phase")
            try c.encode(m.version, forKey: "version")
            try c.encode(m.gradientNorm, forKey: "grad_norm")
            try c.encode(m.fingerprint, forKey: "fingerprint")
            for (name, value) in m.values where !Self.metricsFixedKeys.contains(name) {
                try c.encode(value, forKey: EventKey(stringValue: name))
            }
        case .checkpoint(let directory, let phase, let done, let version):
            try c.encode(directory, forKey: "directory")
            try c.encode(phase, forKey: "phase")
            try c.encode(done, forKey: "done")
            try c.encode(version, forKey: "version")
        case .labels(let phase, let valid, let ambiguous, let invalid, let retries):
            try c.encode(phase, forKey: "phase")
            try c.encode(valid, forKey: "valid")
            try c.encode(ambiguous, forKey: "ambiguous")
            try c.encode(invalid, forKey: "invalid")
            try c.encode(retries, forKey: "retries")
        case .rewardModelAccuracy(let labeler, let groundTruth, let heldOut):
            try c.encode(labeler, forKey: "labeler")
            try c.encode(groundTruth, forKey: "ground_truth")
            try c.encode(heldOut, forKey: "held_out")
        case .preferenceData(let path, let pairs):
            try c.encode(path, forKey: "path")
            try c.encode(pairs, forKey: "pairs")
        case .labelsFromJournal(let phase, let count):
            try c.encode(phase, forKey: "phase")
            try c.encode(count, forKey: "count")
        case .labelsRequested(let phase, let questions, let journaled):
            try c.encode(phase, forKey: "phase")
            try c.encode(questions, forKey: "questions")
            try c.encode(journaled, forKey: "journaled")
        case .labelerBudget(let requests, let tokens, let requestLimit, let tokenLimit):
            try c.encode(requests, forKey: "requests")
            try c.encode(tokens, forKey: "tokens")
            try c.encodeIfPresent(requestLimit, forKey: "requests_per_minute")
            try c.encodeIfPresent(tokenLimit, forKey: "tokens_per_minute")
        case .ratings(let failed, let rated):
            try c.encode(failed, forKey: "failed")
            try c.encode(rated, forKey: "rated")
        case .labelerAudit(let phase, let pairsPerSecond, let audit, let alignment):
            try c.encode(phase, forKey: "phase")
            try c.encode(pairsPerSecond.rounded(), forKey: "pairs_per_second")
            try c.encode(audit.orderAgreement, forKey: "order_agreement")
            try c.encode(audit.firstPosition, forKey: "first_position")
            try c.encode(alignment.debiased, forKey: "alignment")
            try c.encode(alignment.singleOrder, forKey: "single_order_alignment")
        case .evaluation(let e):
            try c.encode(e.iteration, forKey: "iteration")
            try c.encode(e.prompts, forKey: "prompts")
            try c.encode(e.winRate, forKey: "win_rate")
            try c.encode(e.kl, forKey: "kl")
            try c.encode(e.responseLength, forKey: "response_length")
            try c.encode(e.groundTruthQuality, forKey: "ground_truth_quality")
            try c.encode(e.examples, forKey: "examples")
        case .runFinished(let jobsPerWorker):
            try c.encode(jobsPerWorker, forKey: "jobs_per_worker")
        case .interrupted:
            break
        }
    }

    // size: field list
    init(from c: KeyedDecodingContainer<EventKey>) throws {
        func string(_ key: EventKey) throws -> String { try c.decode(String.self, forKey: key) }
        func int(_ key: EventKey) throws -> Int { try c.decode(Int.self, forKey: key) }
        func version() throws -> UInt64 { try c.decode(UInt64.self, forKey: "version") }
        // Logs written before steps carried a fingerprint name the FNV checksum instead.
        func fingerprint() throws -> String {
            try c.decodeIfPresent(String.self, forKey: "fingerprint") ?? string("checksum")
        }
        let kind = try string("event")
        switch kind {
        case "run_started":
            self = .runStarted(
                name: try string("name"), seed: try string("seed"), coordinator: try string("coordinator"))
        case "resumed": self = .resumed(phase: try string("phase"), done: try int("done"), version: try version())
        case "phase": self = .phase(try string("phase"))
        case "worker_joined":
            self = .workerJoined(
                worker: try string("worker"), name: try string("name"), host: try string("host"), pid: try int("pid"),
                ring: try string("ring"), key: try c.decodeIfPresent(String.self, forKey: "key"))
        case "worker_lost": self = .workerLost(worker: try string("worker"), reason: try string("reason"))
        case "job":
            self = .job(
                job: try c.decode(UInt64.self, forKey: "job"), kind: try string("kind"), worker: try string("worker"),
                attempt: try int("attempt"), seconds: try c.decodeIfPresent(Double.self, forKey: "seconds") ?? 0)
        case "job_failed":
            self = .jobFailed(kind: try string("kind"), worker: try string("worker"), reason: try string("reason"))
        case "step":
            self = .step(
                version: try version(), participants: try c.decode([String].self, forKey: "participants"),
                epoch: try int("epoch"), fingerprint: try fingerprint())
        case "step_retry": self = .stepRetry(version: try version(), epoch: try int("epoch"))
        case "snapshot":
            self = .snapshot(
                version: try version(), from: try string("from"),
                purpose: try c.decode(SnapshotPurpose.self, forKey: "purpose"))
        case "synchronized": self = .synchronized(worker: try string("worker"), version: try version())
        case "broadcast":
            self = .broadcast(
                version: try version(), from: try string("from"), chain: try c.decode([String].self, forKey: "chain"))
        case "metrics": self = .metrics(try Self.stepMetrics(c))
        case "checkpoint":
            self = .checkpoint(
                directory: try string("directory"), phase: try string("phase"), done: try int("done"),
                version: try version())
        case "labels":
            self = .labels(
                phase: try string("phase"), valid: try int("valid"), ambiguous: try int("ambiguous"),
                invalid: try int("invalid"), retries: try int("retries"))
        case "reward_model_accuracy":
            self = .rewardModelAccuracy(
                labeler: try c.decodeIfPresent(Double.self, forKey: "labeler"),
                groundTruth: try c.decodeIfPresent(Double.self, forKey: "ground_truth"), heldOut: try int("held_out"))
        case "preference_data": self = .preferenceData(path: try string("path"), pairs: try int("pairs"))
        case "labels_from_journal": self = .labelsFromJournal(phase: try string("phase"), count: try int("count"))
        case "labels_requested":
            self = .labelsRequested(
                phase: try string("phase"), questions: try int("questions"), journaled: try int("journaled"))
        case "labeler_budget":
            self = .labelerBudget(
                requests: try int("requests"), tokens: try int("tokens"),
                requestLimit: try c.decodeIfPresent(Int.self, forKey: "requests_per_minute"),
                tokenLimit: try c.decodeIfPresent(Int.self, forKey: "tokens_per_minute"))
        case "ratings": self = .ratings(failed: try int("failed"), rated: try int("rated"))
        case "labeler_audit":
            func number(_ key: EventKey) throws -> Double? { try c.decodeIfPresent(Double.self, forKey: key) }
            self = .labelerAudit(
                phase: try string("phase"), pairsPerSecond: try c.decode(Double.self, forKey: "pairs_per_second"),
                audit: LabelAudit(
                    orderAgreement: try number("order_agreement"), firstPosition: try number("first_position")),
                alignment: .init(debiased: try number("alignment"), singleOrder: try number("single_order_alignment")))
        case "evaluation":
            self = .evaluation(
                .init(
                    iteration: try c.decodeIfPresent(Int.self, forKey: "iteration"), prompts: try int("prompts"),
                    winRate: try c.decode(RunSummary.WinRate.self, forKey: "win_rate"),
                    kl: try c.decode(Double.self, forKey: "kl"),
                    responseLength: try c.decode(RunSummary.Pair.self, forKey: "response_length"),
                    groundTruthQuality: try c.decode(RunSummary.Pair.self, forKey: "ground_truth_quality"),
                    examples: try c.decode([Example].self, forKey: "examples")))
        case "run_finished":
            self = .runFinished(jobsPerWorker: try c.decode([String: Int].self, forKey: "jobs_per_worker"))
        case "interrupted": self = .interrupted
        default:
            throw DecodingError.dataCorruptedError(
                forKey: "event", in: c, debugDescription: "unknown event \"\(kind)\"")
        }
    }

    private static func stepMetrics(_ c: KeyedDecodingContainer<EventKey>) throws -> StepMetrics {
        var values: [String: Double] = [:]
        for key in c.allKeys where !metricsFixedKeys.contains(key.stringValue) {
            if let v = try? c.decode(Double.self, forKey: key) { values[key.stringValue] = v }
        }
        return StepMetrics(
            phase: try c.decode(String.self, forKey: "phase"), version: try c.decode(UInt64.self, forKey: "version"),
            gradientNorm: try c.decode(Double.self, forKey: "grad_norm"),
            fingerprint: try c.decodeIfPresent(String.self, forKey: "fingerprint")
                ?? c.decode(String.self, forKey: "checksum"), values: values)
    }
}
