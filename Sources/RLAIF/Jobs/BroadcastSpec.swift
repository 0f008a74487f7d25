import Protocol
import Tensor

/// One link of a weights broadcast down a chain of rollout workers: the source (assignment kind
/// `broadcast`) sends its models' values, without optimizer state, to the first worker; each
/// worker (`synchronize` with this body) takes every chunk and forwards it to the next as it
/// arrives, so one copy leaves the source whatever the chain's length.
public struct BroadcastSpec: Sendable, Equatable, WireBodyCodable {
    /// The replica version the weights are at.
    public var version: UInt64
    /// Names the broadcast among reductions on the ring ports (from the coordinator's ring epochs).
    public var epoch: UInt32
    /// The next worker's ring listener; nil where the chain ends.
    public var next: String?
    /// In a cluster with keys: the next worker's public key.
    public var nextKey: String?
    /// How long a worker waits for each chunk.
    public var timeoutMs: Int

    public init(version: UInt64, epoch: UInt32, next: String?, nextKey: String? = nil, timeoutMs: Int) {
        self.version = version
        self.epoch = epoch
        self.next = next
        self.nextKey = nextKey
        self.timeoutMs = timeoutMs
    }

    public func encode(to e: inout BodyEncoder) {
        e.u64(version)
        e.u32(epoch)
        e.optionalString(next)
        e.optionalString(nextKey)
        e.count(timeoutMs)
    }

    public init(from d: inout BodyDecoder) throws(WireError) {
        self.init(
            version: try d.u64("version"), epoch: try d.u32("epoch"), next: try d.optionalString("next"),
            nextKey: try d.optionalString("nextKey"), timeoutMs: Int(try d.u32("timeoutMs")))
    }
}

/// The models a broadcast carries, as the chunks that travel: chunk 0 is a header (each model's
/// role, size and optimizer step), the rest the models' values one after the other, cut every
/// `chunkElements`.
public struct BroadcastPayload: Sendable {
    public struct Model: Sendable, Equatable {
        public var role: ModelReplica.Role
        public var count: Int
        public var optimizerStep: Int
        public init(role: ModelReplica.Role, count: Int, optimizerStep: Int) {
            self.role = role
            self.count = count
            self.optimizerStep = optimizerStep
        }
    }

    public static let chunkElements = 1 << 18  // 1 MiB of float32: small enough to pipeline
    static let magic: UInt32 = 0x524C_5742  // "RLWB"

    public let models: [Model]

    public init(models: [Model]) { self.models = models }

    public var valueCount: Int { models.reduce(0) { $0 + $1.count } }
    /// Chunks after the header.
    public var valueChunks: Int { (valueCount + Self.chunkElements - 1) / Self.chunkElements }

    /// The header as a float32 tensor: chunks carry float32 tensors only, so its words travel as
    /// their bit patterns (copied, never computed on).
    public var header: Tensor {
        var words: [UInt32] = [Self.magic, UInt32(models.count)]
        for m in models {
            words += [UInt32(m.role.wireCode)] + Self.split(m.count) + Self.split(m.optimizerStep)
        }
        return Tensor(shape: [words.count], scalars: words.map { Float(bitPattern: $0) })
    }

    static func split(_ n: Int) -> [UInt32] { [UInt32(truncatingIfNeeded: n), UInt32(truncatingIfNeeded: n >> 32)] }

    /// Reads a header chunk; what does not read is an error naming why.
    public init(header: Tensor) throws(BroadcastError) {
        let words = header.scalars.map(\.bitPattern)
        guard words.count >= 2, words[0] == Self.magic, words.count == 2 + 5 * Int(words[1]) else {
            throw BroadcastError(message: "the first chunk of a weights broadcast is not its header")
        }
        var models: [Model] = []
        for i in 0..<Int(words[1]) {
            let w = Array(words[(2 + 5 * i)..<(7 + 5 * i)])
            guard let role = ModelReplica.Role.allCases.first(where: { UInt32($0.wireCode) == w[0] }) else {
                throw BroadcastError(message: "a weights broadcast names model code \(w[0])")
            }
            let count = Int(w[1]) | Int(w[2]) << 32, step = Int(w[3]) | Int(w[4]) << 32
            models.append(Model(role: role, count: count, optimizerStep: step))
        }
        self.init(models: models)
    }

    /// The states' values as chunks (after the header), in order.
    public static func chunks(of states: [ModelReplica.ModelState]) -> [Tensor] {
        let total = states.reduce(0) { $0 + $1.values.count }
        var out: [Tensor] = []
        var model = 0, offset = 0  // where the next value is read
        for start in stride(from: 0, to: total, by: chunkElements) {
            let chunk = Tensor(shape: [min(chunkElements, total - start)], repeating: 0)
            var filled = 0
            while filled < chunk.count {
                let source = states[model].values
                let n = min(chunk.count - filled, source.count - offset)
                (chunk.pointer + filled).update(from: source.pointer + offset, count: n)
                filled += n
                offset += n
                if offset == source.count { (model, offset) = (model + 1, 0) }
            }
            out.append(chunk)
        }
        return out
    }

    /// The models' states (no optimizer state) from the value chunks, in order.
    public func states(from chunks: [Tensor]) throws(BroadcastError) -> [ModelReplica.ModelState] {
        let brought = chunks.reduce(0) { $0 + $1.count }
        guard brought == valueCount else {
            throw BroadcastError(message: "a weights broadcast brought \(brought) values, its header \(valueCount)")
        }
        let values = models.map { Tensor(shape: [$0.count], repeating: 0) }
        var model = 0, offset = 0  // where the next value goes
        for chunk in chunks {
            var used = 0
            while used < chunk.count {
                while offset == values[model].count { (model, offset) = (model + 1, 0) }
                let n = min(chunk.count - used, values[model].count - offset)
                (values[model].pointer + offset).update(from: chunk.pointer + used, count: n)
                used += n
                offset += n
            }
        }
        return zip(models, values).map { m, v in
            ModelReplica.ModelState(
                role: m.role, values: v, firstMoment: nil, secondMoment: nil, optimizerStep: m.optimizerStep)
        }
    }
}

public struct BroadcastError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(message: String) { self.message = message }
    public var description: String { message }
}
