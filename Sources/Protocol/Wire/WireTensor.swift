import Tensor

/// A tensor carried in its own frame: raw little-endian elements, described (dtype, shape) in the
/// control frame. Never passes through a text encoding.
public enum WireTensor: Sendable {
    case float32(Tensor)
    case int32(TokenTensor)
    /// A flat run of 64-bit integers: fixed-point partial sums (`ExactSum.units`) in the all-reduce.
    case int64([Int64])
    /// Integer words read in place (all-reduce payloads; see `Wire.ChunkPayload`).
    case words(WireWords)

    public enum DType: UInt8, Sendable {
        case float32 = 1
        case int32 = 2
        case int64 = 3
        var size: Int { self == .int64 ? 8 : 4 }
    }

    public var dtype: DType {
        switch self {
        case .float32: .float32
        case .int32: .int32
        case .int64: .int64
        case .words(let w): w.dtype
        }
    }

    public var shape: [Int] {
        switch self {
        case .float32(let t): t.shape
        case .int32(let t): t.shape
        case .int64(let v): [v.count]
        case .words(let w): [w.count]
        }
    }

    /// The bytes its frame holds.
    var byteCount: Int { shape.reduce(1, *) * dtype.size }

    /// Calls `body` with the frame's bytes as they would be sent (little-endian hosts only: the
    /// shared-memory path is same-host).
    func withBytes<R>(_ body: (UnsafeRawPointer) -> R) -> R {
        switch self {
        case .float32(let t): withExtendedLifetime(t.storage) { body(UnsafeRawPointer(t.pointer)) }
        case .int32(let t): t.ids.withUnsafeBytes { body($0.baseAddress ?? UnsafeRawPointer(bitPattern: 8)!) }
        case .int64(let v): v.withUnsafeBytes { body($0.baseAddress ?? UnsafeRawPointer(bitPattern: 8)!) }
        case .words(let w): withExtendedLifetime(w.owner) { body(w.base) }
        }
    }
}

extension WireTensor: Equatable {
    /// Bitwise equality of dtype, shape and elements.
    public static func == (a: WireTensor, b: WireTensor) -> Bool {
        switch (a, b) {
        case (.float32(let x), .float32(let y)):
            x.shape == y.shape && x.scalars.map(\.bitPattern) == y.scalars.map(\.bitPattern)
        case (.int32(let x), .int32(let y)): x == y
        case (.int64(let x), .int64(let y)): x == y
        case (.words(let x), .words(let y)): x == y
        default: false
        }
    }
}
