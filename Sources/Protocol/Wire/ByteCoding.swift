/// Where an encoder writes: first a `ByteCounter` measures the message, then a `ByteWriter` fills
/// an array of exactly that size, so encoding allocates once and never grows a buffer.
protocol ByteSink {
    mutating func raw(_ bytes: UnsafeRawBufferPointer)
    mutating func integer<T: FixedWidthInteger>(_ v: T)
}

extension ByteSink {
    @inline(__always) mutating func u8(_ v: UInt8) { integer(v) }
    @inline(__always) mutating func u16(_ v: UInt16) { integer(v) }
    @inline(__always) mutating func u32(_ v: UInt32) { integer(v) }
    @inline(__always) mutating func u64(_ v: UInt64) { integer(v) }
    @inline(__always) mutating func f64(_ v: Double) { integer(v.bitPattern) }

    /// u32 byte length, then UTF-8.
    mutating func string(_ s: String) {
        var s = s
        s.withUTF8 { utf8 in
            u32(UInt32(utf8.count))
            raw(UnsafeRawBufferPointer(utf8))
        }
    }

    /// u32 byte length, then the bytes.
    mutating func bytes(_ b: [UInt8]) {
        u32(UInt32(b.count))
        b.withUnsafeBytes { raw($0) }
    }

    /// u32 count, then each string.
    mutating func stringArray(_ a: [String]) {
        u32(UInt32(a.count))
        for s in a { string(s) }
    }

    /// u32 count, then u64 each.
    mutating func u64Array(_ a: [UInt64]) {
        u32(UInt32(a.count))
        #if _endian(little)
            a.withUnsafeBytes { raw($0) }
        #else
            for v in a { u64(v) }
        #endif
    }
}

/// Counts the bytes an encoding will take.
struct ByteCounter: ByteSink {
    var count = 0
    @inline(__always) mutating func raw(_ bytes: UnsafeRawBufferPointer) { count += bytes.count }
    @inline(__always) mutating func integer<T: FixedWidthInteger>(_ v: T) { count += MemoryLayout<T>.size }
}

/// Writes little-endian fields into memory sized by a `ByteCounter` pass.
struct ByteWriter: ByteSink {
    let base: UnsafeMutableRawPointer
    var offset = 0

    @inline(__always) mutating func raw(_ bytes: UnsafeRawBufferPointer) {
        if let src = bytes.baseAddress, bytes.count > 0 {
            (base + offset).copyMemory(from: src, byteCount: bytes.count)
        }
        offset += bytes.count
    }

    @inline(__always) mutating func integer<T: FixedWidthInteger>(_ v: T) {
        (base + offset).storeBytes(of: v.littleEndian, as: T.self)
        offset += MemoryLayout<T>.size
    }

}

/// Bounds-checked little-endian reading; every failure names the field.
struct ByteReader {
    let bytes: UnsafeRawBufferPointer
    var offset = 0
    let limits: WireLimits

    init(_ bytes: UnsafeRawBufferPointer, limits: WireLimits) {
        self.bytes = bytes
        self.limits = limits
    }

    var remaining: Int { bytes.count - offset }

    func fail(_ code: WireError.Code, _ field: String, _ detail: String) -> WireError {
        WireError(code: code, frame: 0, field: field, detail: detail)
    }

    mutating func take(_ n: Int, _ field: String) throws(WireError) -> UnsafeRawBufferPointer {
        guard n >= 0, n <= remaining else {
            throw fail(.truncated, field, "needs \(n) bytes, \(remaining) left")
        }
        defer { offset += n }
        return UnsafeRawBufferPointer(rebasing: bytes[offset..<(offset + n)])
    }

    @inline(__always) mutating func integer<T: FixedWidthInteger>(_: T.Type, _ field: String) throws(WireError) -> T {
        let n = MemoryLayout<T>.size
        guard n <= remaining else { throw fail(.truncated, field, "needs \(n) bytes, \(remaining) left") }
        defer { offset += n }
        return T(littleEndian: bytes.loadUnaligned(fromByteOffset: offset, as: T.self))
    }

    mutating func u8(_ field: String) throws(WireError) -> UInt8 { try integer(UInt8.self, field) }
    mutating func u16(_ field: String) throws(WireError) -> UInt16 { try integer(UInt16.self, field) }
    mutating func u32(_ field: String) throws(WireError) -> UInt32 { try integer(UInt32.self, field) }
    mutating func u64(_ field: String) throws(WireError) -> UInt64 { try integer(UInt64.self, field) }
    mutating func f64(_ field: String) throws(WireError) -> Double { Double(bitPattern: try u64(field)) }

    mutating func string(_ field: String) throws(WireError) -> String {
        let n = Int(try u32(field))
        guard n <= limits.maxStringBytes else {
            throw fail(.tooLarge, field, "string of \(n) bytes exceeds \(limits.maxStringBytes)")
        }
        let raw = try take(n, field)
        guard let s = String(validating: raw, as: UTF8.self) else { throw fail(.badUTF8, field, "not UTF-8") }
        return s
    }

    /// A body: u32 length (bounded by the frame it lies in), then the bytes.
    mutating func bytes(_ field: String) throws(WireError) -> [UInt8] {
        let n = Int(try u32(field))
        guard n <= limits.maxBodyBytes else {
            throw fail(.tooLarge, field, "body of \(n) bytes exceeds \(limits.maxBodyBytes)")
        }
        return Array(try take(n, field))
    }

    mutating func stringArray(_ field: String) throws(WireError) -> [String] {
        let n = Int(try u32(field))
        // Each string takes at least its 4-byte length: a count the frame cannot hold is refused
        // before anything is reserved for it.
        guard n <= limits.maxArrayCount, n <= remaining / 4 else {
            throw fail(n > limits.maxArrayCount ? .tooLarge : .truncated, field, "\(n) strings")
        }
        var out: [String] = []
        out.reserveCapacity(n)
        for i in 0..<n { out.append(try string("\(field)[\(i)]")) }
        return out
    }

    mutating func u64Array(_ field: String) throws(WireError) -> [UInt64] {
        let n = Int(try u32(field))
        guard n <= limits.maxArrayCount else {
            throw fail(.tooLarge, field, "\(n) elements exceed \(limits.maxArrayCount)")
        }
        let raw = try take(n * 8, field)
        return [UInt64](unsafeUninitializedCapacity: n) { buffer, initialized in
            if n > 0 { UnsafeMutableRawBufferPointer(buffer).copyMemory(from: raw) }
            #if _endian(big)
                for i in 0..<n { buffer[i] = UInt64(littleEndian: buffer[i]) }
            #endif
            initialized = n
        }
    }

    /// Reads an enum by raw value; an unknown value is a `badValue` error.
    mutating func enumeration<E: RawRepresentable>(_: E.Type, _ field: String) throws(WireError) -> E
    where E.RawValue == UInt8 {
        let raw = try u8(field)
        guard let v = E(rawValue: raw) else { throw fail(.badValue, field, "unknown value \(raw)") }
        return v
    }

    mutating func role(_ field: String) throws(WireError) -> Wire.WorkerRole {
        let code = try u8(field)
        guard let role = Wire.WorkerRole(code: code) else { throw fail(.badValue, field, "unknown value \(code)") }
        return role
    }

    func expectEnd() throws(WireError) {
        if remaining != 0 { throw fail(.trailingBytes, "end", "\(remaining) unread bytes") }
    }
}

/// Bounds the decoder enforces before allocating anything.
public struct WireLimits: Sendable, Equatable {
    public var maxStringBytes = 64 * 1024
    public var maxArrayCount = 1 << 20
    public var maxTensors = 64
    public var maxRank = 8
    /// Largest single tensor payload.
    public var maxTensorBytes = 4 << 30
    /// Largest job body (an assignment's parameters or a result's output).
    public var maxBodyBytes = 128 << 20

    public init() {}
    public static let `default` = WireLimits()
}
