import Protocol

/// An optimizer step's settings and micro-batches: the whole step as the run asks for it, or one
/// rank's `share` as it travels, each sequence with its own tokens and per-token numbers.
public struct GradientJob: Sendable {
    public var spec: GradientSpec
    public var microBatches: [MicroBatch]

    public init(spec: GradientSpec, microBatches: [MicroBatch]) {
        self.spec = spec
        self.microBatches = microBatches
    }

    /// Every rank's part of the step in a ring of `size`, dealt by cost so that ranks finish
    /// together (`dealt`). Which rank computes a micro-batch never changes the bits: every rank's
    /// gradients and metrics are exact sums.
    public func shares(of size: Int) -> [GradientJob] {
        let costs = microBatches.map { $0.batch.count * $0.batch.width }
        return Self.dealt(costs, ranks: size).map { GradientJob(spec: spec, microBatches: $0.map { microBatches[$0] }) }
    }

    /// Micro-batch indices per rank: the costliest first, each to the rank with the least cost so
    /// far (ties: the earlier micro-batch, the lower rank); each rank's in their original order.
    static func dealt(_ costs: [Int], ranks: Int) -> [[Int]] {
        var load = [Int](repeating: 0, count: ranks)
        var out = [[Int]](repeating: [], count: ranks)
        for i in costs.indices.sorted(by: { (costs[$0], $1) > (costs[$1], $0) }) {
            let r = load.indices.min { (load[$0], $0) < (load[$1], $1) }!
            load[r] += costs[i]
            out[r].append(i)
        }
        return out.map { $0.sorted() }
    }
}

extension GradientJob: WireBodyCodable {
    public func encode(to e: inout BodyEncoder) {
        spec.encode(to: &e)
        e.list(microBatches) { e, micro in
            e.count(micro.id)
            e.count(micro.batch.count)
            for s in 0..<micro.batch.count {
                e.int32s(micro.batch.prompts[s])
                e.int32s(micro.batch.responses[s])
                e.floats(micro.advantages.isEmpty ? [] : micro.advantages[s])
                e.floats(micro.returns.isEmpty ? [] : micro.returns[s])
                e.floats(micro.oldLogProbs.isEmpty ? [] : micro.oldLogProbs[s])
            }
            e.floats(micro.labels)
        }
    }

    public init(from d: inout BodyDecoder) throws(WireError) {
        let spec = try GradientSpec(from: &d)
        let micros = try d.list("microBatches", elementBytes: 12) { (d) throws(WireError) -> MicroBatch in
            let id = Int(try d.u32("id"))
            let size = try d.count("sequences", elementBytes: 20)
            guard size > 0 else { throw d.failure(.badValue, "sequences", "micro-batch \(id) has no sequence") }
            var prompts: [[Int32]] = [], responses: [[Int32]] = []
            var perToken: [[[Float]]] = [[], [], []]  // advantages, returns, old log-probs
            for _ in 0..<size {
                let prompt = try d.int32s("prompt"), response = try d.int32s("response")
                guard !prompt.isEmpty else { throw d.failure(.badValue, "prompt", "a prompt has no token") }
                prompts.append(prompt)
                responses.append(response)
                for (k, name) in ["advantages", "returns", "oldLogProbs"].enumerated() {
                    let numbers = try d.floats(name)
                    guard numbers.isEmpty || numbers.count == response.count else {
                        throw d.failure(.badValue, name, "\(numbers.count) numbers for \(response.count) tokens")
                    }
                    perToken[k].append(numbers)
                }
            }
            var micro = MicroBatch(id: id, batch: SequenceBatch(prompts: prompts, responses: responses))
            // A micro-batch has a kind of per-token number for every sequence or for none.
            let kept = try perToken.map { (lists) throws(WireError) -> [[Float]] in
                if lists.allSatisfy(\.isEmpty) { return [] }
                guard zip(lists, responses).allSatisfy({ $0.count == $1.count }) else {
                    throw d.failure(.badValue, "advantages", "per-token numbers for some sequences only")
                }
                return lists
            }
            (micro.advantages, micro.returns, micro.oldLogProbs) = (kept[0], kept[1], kept[2])
            micro.labels = try d.floats("labels")
            guard micro.labels.isEmpty || micro.labels.count * 2 == size else {
                throw d.failure(.badValue, "labels", "\(micro.labels.count) labels for \(size) sequences (pairs)")
            }
            return micro
        }
        self.init(spec: spec, microBatches: micros)
    }
}

extension GradientSpec: WireBodyCodable {
    public func encode(to e: inout BodyEncoder) {
        e.code(objective)
        for v in [learningRate, clipNorm, normalizer, ppoClip, valueCoefficient, dpoBeta, klBeta] { e.f64(v) }
        e.bool(forkReference)
        e.bool(forkReward)
        e.bool(ring != nil)
        if let ring {
            e.count(ring.rank)
            e.count(ring.size)
            e.u32(ring.epoch)
            e.string(ring.next)
            e.optionalString(ring.nextKey)
            e.count(ring.timeoutMs)
        }
    }

    public init(from d: inout BodyDecoder) throws(WireError) {
        self.init(
            objective: try d.code(ObjectiveKind.self, "objective"), learningRate: try d.f64("learningRate"),
            clipNorm: try d.f64("clipNorm"),
            normalizer: try d.f64("normalizer"))
        ppoClip = try d.f64("ppoClip")
        valueCoefficient = try d.f64("valueCoefficient")
        dpoBeta = try d.f64("dpoBeta")
        klBeta = try d.f64("klBeta")
        forkReference = try d.bool("forkReference")
        forkReward = try d.bool("forkReward")
        if try d.bool("ring") {
            let rank = Int(try d.u32("ring.rank")), size = Int(try d.u32("ring.size"))
            guard rank < size else { throw d.failure(.badValue, "ring.rank", "rank \(rank) in a ring of \(size)") }
            ring = Ring(
                rank: rank, size: size, epoch: try d.u32("ring.epoch"), next: try d.string("ring.next"),
                nextKey: try d.optionalString("ring.nextKey"), timeoutMs: Int(try d.u32("ring.timeoutMs")))
        }
    }
}

extension GradientSpec.ObjectiveKind: WireCoded {
    public var wireCode: UInt8 {
        switch self {
        case .sft: 1
        case .reward: 2
        case .policyGradient: 3
        case .ppo: 4
        case .dpo: 5
        case .groupPolicy: 6
        }
    }
}

/// Metrics travel sorted by name, so a result's bytes do not depend on dictionary order.
extension GradientResult: WireBodyCodable {
    public func encode(to e: inout BodyEncoder) {
        e.u64(version)
        e.string(fingerprint)
        e.f64(gradientNorm)
        e.list(metrics.sorted { $0.key < $1.key }) {
            $0.string($1.key)
            $0.f64($1.value)
        }
    }

    public init(from d: inout BodyDecoder) throws(WireError) {
        let version = try d.u64("version"), fingerprint = try d.string("fingerprint")
        let norm = try d.f64("gradientNorm")
        let pairs = try d.list("metrics", elementBytes: 12) { (d) throws(WireError) in
            (try d.string("metric"), try d.f64("metric"))
        }
        self.init(
            version: version, fingerprint: fingerprint, metrics: Dictionary(pairs) { _, last in last },
            gradientNorm: norm)
    }
}

extension ReplicaReport: WireBodyCodable {
    public func encode(to e: inout BodyEncoder) {
        e.u64(version)
        e.optionalString(fingerprint)
    }

    public init(from d: inout BodyDecoder) throws(WireError) {
        self.init(version: try d.u64("version"), fingerprint: try d.optionalString("fingerprint"))
    }
}
