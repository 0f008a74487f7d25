import Foundation
import Tensor

/// A flat run of little-endian integers (int32 or int64) that is read where it lies: in the
/// libzmq frame it arrived in, or in the array it was built from. The all-reduce ring adds
/// received partial sums straight from their frames, and sends its own without a copy.
public struct WireWords: @unchecked Sendable {
    public let dtype: WireTensor.DType
    public let count: Int
    /// Keeps `base` valid: the received frame, or the box around the array.
    let owner: AnyObject
    let base: UnsafeRawPointer

    public init(_ values: [Int32]) { self.init(array: values, dtype: .int32) }
    public init(_ values: [Int64]) { self.init(array: values, dtype: .int64) }
    /// Words in place in their owner's memory (a sum's own words: sent without a copy).
    public init(_ words: LowWords) {
        self.init(dtype: .int32, count: words.count, owner: words.owner, base: UnsafeRawPointer(words.base))
    }

    private init<T>(array values: [T], dtype: WireTensor.DType) {
        let box = ArrayBox(values)
        self.init(dtype: dtype, count: values.count, owner: box, base: box.base)
    }

    private init(dtype: WireTensor.DType, count: Int, owner: AnyObject, base: UnsafeRawPointer) {
        self.dtype = dtype
        self.count = count
        self.owner = owner
        self.base = base
    }

    /// The words of a received frame; copied only when libzmq's buffer is not aligned for them.
    init(frame: ZMQFrame, dtype: WireTensor.DType) {
        precondition(dtype == .int32 || dtype == .int64, "WireWords: integer dtypes only")
        let size = dtype.size
        #if _endian(little)
            let start = frame.withBytes { $0.baseAddress }
            if let start, Int(bitPattern: start) % size == 0 {
                // The frame owns this memory and lives as long as these words do.
                self.init(dtype: dtype, count: frame.count / size, owner: frame, base: start)
                return
            }
        #endif
        var bytes = frame.bytes
        #if _endian(big)
            for i in stride(from: 0, to: bytes.count, by: size) { bytes[i..<(i + size)].reverse() }
        #endif
        if dtype == .int32 {
            self.init(bytes.withUnsafeBytes { Array($0.bindMemory(to: Int32.self)) })
        } else {
            self.init(bytes.withUnsafeBytes { Array($0.bindMemory(to: Int64.self)) })
        }
    }

    public var byteCount: Int { count * dtype.size }

    public func withInt32s<R, E: Error>(_ body: (UnsafeBufferPointer<Int32>) throws(E) -> R) throws(E) -> R {
        precondition(dtype == .int32, "WireWords: int32 read of \(dtype) words")
        return try withExtendedLifetime(owner) { () throws(E) -> R in
            try body(UnsafeBufferPointer(start: base.assumingMemoryBound(to: Int32.self), count: count))
        }
    }

    public func withInt64s<R, E: Error>(_ body: (UnsafeBufferPointer<Int64>) throws(E) -> R) throws(E) -> R {
        precondition(dtype == .int64, "WireWords: int64 read of \(dtype) words")
        return try withExtendedLifetime(owner) { () throws(E) -> R in
            try body(UnsafeBufferPointer(start: base.assumingMemoryBound(to: Int64.self), count: count))
        }
    }
}

extension WireWords: Equatable {
    public static func == (a: WireWords, b: WireWords) -> Bool {
        a.dtype == b.dtype && a.count == b.count
            && withExtendedLifetime((a.owner, b.owner)) { memcmp(a.base, b.base, a.byteCount) == 0 }
    }
}

extension WireWords: CustomStringConvertible {
    public var description: String { "\(count) \(dtype) words" }
}

/// Holds an array for libzmq's zero-copy send: a `let` array's storage stays put while the box
/// lives, and the box lives until libzmq releases the message.
private final class ArrayBox<Element>: @unchecked Sendable {
    let values: [Element]
    let base: UnsafeRawPointer

    init(_ values: [Element]) {
        self.values = values
        // An empty array has no storage: any non-null address serves for a zero-byte send.
        base = values.withUnsafeBytes { $0.baseAddress } ?? UnsafeRawPointer(bitPattern: 8)!
    }
}
