import Protocol
import Tensor

/// The binary bodies of jobs and their outputs, and only here (docs/PROTOCOL.md, Job bodies):
/// an assignment's kind says which type its body holds, the job says which output comes back.
extension Job {
    public var wire: (kind: Wire.JobKind, body: [UInt8]) {
        switch self {
        case .rollout(let s): (.rollout, s.wireBody)
        case .labeling(let s): (.labeling, s.wireBody)
        case .scores(let s): (.evaluation, s.wireBody)
        }
    }

    public init(kind: Wire.JobKind, body: [UInt8]) throws {
        switch kind {
        case .rollout: self = .rollout(try RolloutSpec(wireBody: body, field: "assign.rollout"))
        case .labeling: self = .labeling(try LabelingSpec(wireBody: body, field: "assign.labeling"))
        case .evaluation: self = .scores(try ScoreSpec(wireBody: body, field: "assign.evaluation"))
        case .gradient, .synchronize, .broadcast:
            throw JobSpecError(message: "a \(kind) job is not a self-contained job")
        }
    }
}

extension JobOutput {
    public var wireBody: [UInt8] {
        var e = BodyEncoder()
        switch self {
        case .samples(let samples): e.list(samples) { $1.encode(to: &$0) }
        case .preferences(let labels): e.list(labels) { $1.encode(to: &$0) }
        case .ratings(let labels): e.list(labels) { $1.encode(to: &$0) }
        case .scores(let scores): e.floats(scores)
        }
        return e.bytes
    }

    /// Reads the output of `job` from a result's body.
    public init(of job: Job, body: [UInt8]) throws {
        var d = BodyDecoder(body, field: "result")
        // elementBytes: the smallest encoding of one element (a sample: token count and flags; a
        // rating: id, reward flag, rationale length, retries; a label: id, three flags, status,
        // rationale count, retries).
        switch job {
        case .rollout:
            self = .samples(try d.list("samples", elementBytes: 5) { (d) throws(WireError) in try .init(from: &d) })
        case .labeling(let s) where s.ratings != nil:
            self = .ratings(try d.list("ratings", elementBytes: 17) { (d) throws(WireError) in try .init(from: &d) })
        case .labeling:
            self = .preferences(try d.list("labels", elementBytes: 20) { (d) throws(WireError) in try .init(from: &d) })
        case .scores: self = .scores(try d.floats("scores"))
        }
        try d.expectEnd()
    }
}

extension RolloutSpec: WireBodyCodable {
    public func encode(to e: inout BodyEncoder) {
        e.strings(prompts)
        e.u64s(sampleIDs)
        e.u64(seed)
        e.f64(temperature)
        e.count(maxNewTokens)
        e.code(generator)
        e.bool(score)
        e.int32s(stopTokens)
    }

    public init(from d: inout BodyDecoder) throws(WireError) {
        let prompts = try d.strings("prompts"), ids = try d.u64s("sampleIDs")
        guard ids.count == prompts.count else {
            throw d.failure(.badValue, "sampleIDs", "\(ids.count) sample ids for \(prompts.count) prompts")
        }
        self.init(
            prompts: prompts, sampleIDs: ids, seed: try d.u64("seed"), temperature: try d.f64("temperature"),
            maxNewTokens: Int(try d.u32("maxNewTokens")),
            generator: try d.code(ModelReplica.Role.self, "generator"), score: try d.bool("score"),
            stopTokens: try d.int32s("stopTokens"))
    }
}

extension ModelReplica.Role: WireCoded {
    public var wireCode: UInt8 {
        switch self {
        case .policy: 1
        case .reference: 2
        case .reward: 3
        }
    }
}

/// A sample: its tokens, then flags (1: scored, 2: rewarded), then what the flags say it has.
extension RolloutSample: WireBodyCodable {
    public func encode(to e: inout BodyEncoder) {
        e.int32s(tokens)
        let scored = !tokens.isEmpty && logProbs.count == tokens.count
        e.u8((scored ? 1 : 0) | (reward != nil ? 2 : 0))
        if scored {
            e.floats(logProbs)
            e.floats(referenceLogProbs)
            e.floats(values)
        }
        if let reward { e.u32(reward.bitPattern) }
    }

    public init(from d: inout BodyDecoder) throws(WireError) {
        self.init(tokens: try d.int32s("tokens"))
        let flags = try d.u8("flags")
        guard flags < 4 else { throw d.failure(.badValue, "flags", "unknown flags \(flags)") }
        if flags & 1 != 0 {
            logProbs = try d.floats("logProbs")
            referenceLogProbs = try d.floats("referenceLogProbs")
            values = try d.floats("values")
            guard [logProbs, referenceLogProbs, values].allSatisfy({ $0.count == tokens.count }) else {
                throw d.failure(.badValue, "logProbs", "per-token numbers do not match the \(tokens.count) tokens")
            }
        }
        if flags & 2 != 0 { reward = Float(bitPattern: try d.u32("reward")) }
    }
}

extension LabelingSpec: WireBodyCodable {
    /// u8 1 and pairs to judge, or 2 and responses to rate.
    public func encode(to e: inout BodyEncoder) {
        if let ratings {
            e.u8(2)
            e.list(ratings) {
                $0.u64($1.id)
                $0.string($1.prompt)
                $0.string($1.response)
            }
        } else {
            e.u8(1)
            e.list(pairs) {
                $0.u64($1.id)
                $0.string($1.prompt)
                $0.string($1.first)
                $0.string($1.second)
                $0.u8(UInt8($1.order))
            }
        }
        e.list(known.sorted { $0.key < $1.key }) {
            $0.string($1.key)
            $1.value.encode(to: &$0)
        }
    }

    public init(from d: inout BodyDecoder) throws(WireError) {
        switch try d.u8("mode") {
        case 1:
            let pairs = try d.list("pairs", elementBytes: 21) { (d) throws(WireError) in
                let id = try d.u64("id"), prompt = try d.string("prompt")
                let first = try d.string("first"), second = try d.string("second")
                let order = try d.u8("order")
                guard order < 2 else { throw d.failure(.badValue, "order", "an order is 0 or 1, got \(order)") }
                return LabelingPair(id: id, prompt: prompt, first: first, second: second, order: Int(order))
            }
            self.init(pairs: pairs, known: try Self.known(&d))
        case 2:
            let ratings = try d.list("ratings", elementBytes: 16) { (d) throws(WireError) in
                RatingItem(id: try d.u64("id"), prompt: try d.string("prompt"), response: try d.string("response"))
            }
            self.init(ratings: ratings, known: try Self.known(&d))
        case let mode:
            throw d.failure(.badValue, "mode", "unknown labeling mode \(mode)")
        }
    }
}

extension LabelingSpec {
    /// The journal's answers that travel with a labeling job.
    static func known(_ d: inout BodyDecoder) throws(WireError) -> [String: LabelerAnswer] {
        let known = try d.list("known", elementBytes: 6) { (d) throws(WireError) in
            (try d.string("key"), try LabelerAnswer(from: &d))
        }
        return Dictionary(known, uniquingKeysWith: { a, _ in a })
    }
}

extension PreferenceLabel: WireBodyCodable {
    public func encode(to e: inout BodyEncoder) {
        e.u64(pairID)
        e.optionalF64(forward)
        e.optionalF64(backward)
        e.optionalF64(probabilityA)
        e.code(status)
        e.strings(rationales)
        e.count(retries)
    }

    public init(from d: inout BodyDecoder) throws(WireError) {
        pairID = try d.u64("pairID")
        forward = try d.optionalF64("forward")
        backward = try d.optionalF64("backward")
        probabilityA = try d.optionalF64("probabilityA")
        status = try d.code(Status.self, "status")
        rationales = try d.strings("rationales")
        retries = Int(try d.u32("retries"))
    }
}

extension PreferenceLabel.Status: WireCoded {
    public var wireCode: UInt8 {
        switch self {
        case .valid: 1
        case .ambiguous: 2
        case .invalid: 3
        }
    }
}

extension RatingLabel: WireBodyCodable {
    public func encode(to e: inout BodyEncoder) {
        e.u64(id)
        e.optionalF64(reward)
        e.string(rationale)
        e.count(retries)
    }

    public init(from d: inout BodyDecoder) throws(WireError) {
        id = try d.u64("id")
        reward = try d.optionalF64("reward")
        rationale = try d.string("rationale")
        retries = Int(try d.u32("retries"))
    }
}

extension ScoreSpec: WireBodyCodable {
    public func encode(to e: inout BodyEncoder) { e.list(sequences) { $0.int32s($1) } }

    public init(from d: inout BodyDecoder) throws(WireError) {
        self.init(
            sequences: try d.list("sequences", elementBytes: 4) { (d) throws(WireError) in try d.int32s("tokens") })
    }
}
