/// Little-endian writing of control fields.
struct ByteWriter {
    var bytes: [UInt8] = []

    init(capacity: Int = 64) { bytes.reserveCapacity(capacity) }

    mutating func u8(_ v: UInt8) { bytes.append(v) }
    mutating func u16(_ v: UInt16) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u32(_ v: UInt32) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func u64(_ v: UInt64) { withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) } }
    mutating func f64(_ v: Double) { u64(v.bitPattern) }
    /// u32 byte length, then UTF-8.
    mutating func string(_ s: String) {
        u32(UInt32(s.utf8.count))
        bytes.append(contentsOf: s.utf8)
    }
    /// u32 count, then u64 each.
    mutating func u64Array(_ a: [UInt64]) {
        u32(UInt32(a.count))
        #if _endian(little)
            a.withUnsafeBytes { bytes.append(contentsOf: $0) }
        #else
            for v in a { u64(v) }
        #endif
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

    mutating func u8(_ field: String) throws(WireError) -> UInt8 { try take(1, field)[0] }
    mutating func u16(_ field: String) throws(WireError) -> UInt16 {
        UInt16(littleEndian: try take(2, field).loadUnaligned(as: UInt16.self))
    }
    mutating func u32(_ field: String) throws(WireError) -> UInt32 {
        UInt32(littleEndian: try take(4, field).loadUnaligned(as: UInt32.self))
    }
    mutating func u64(_ field: String) throws(WireError) -> UInt64 {
        UInt64(littleEndian: try take(8, field).loadUnaligned(as: UInt64.self))
    }
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

    public init() {}
    public static let `default` = WireLimits()
}
