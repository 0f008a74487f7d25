/// The binary form of a job's parameters and of its output: the `body` of `assign` and `result`
/// (docs/PROTOCOL.md, Job bodies). Fields follow one another in the order the type writes them,
/// little-endian, with the same scalar and string encodings as control frames; arrays of numbers
/// are a u32 count and the raw elements. Types in other modules conform to `WireBodyCodable`.
public protocol WireBodyCodable {
    func encode(to body: inout BodyEncoder)
    init(from body: inout BodyDecoder) throws(WireError)
}

extension WireBodyCodable {
    /// The value's body bytes.
    public var wireBody: [UInt8] {
        var e = BodyEncoder()
        encode(to: &e)
        return e.bytes
    }

    /// Reads a value from a whole body: every byte must belong to it.
    public init(wireBody bytes: [UInt8], field: String) throws(WireError) {
        var d = BodyDecoder(bytes, field: field)
        self = try Self(from: &d)
        try d.expectEnd()
    }
}

/// An enum that travels in a body as a one-byte code (its raw values, if any, serve other forms).
public protocol WireCoded: CaseIterable {
    var wireCode: UInt8 { get }
}

/// Appends fields to a body.
public struct BodyEncoder: Sendable {
    public private(set) var bytes: [UInt8] = []

    public init() {}

    @inline(__always) mutating func integer<T: FixedWidthInteger>(_ v: T) {
        withUnsafeBytes(of: v.littleEndian) { bytes.append(contentsOf: $0) }
    }

    public mutating func u8(_ v: UInt8) { bytes.append(v) }
    public mutating func u32(_ v: UInt32) { integer(v) }
    public mutating func u64(_ v: UInt64) { integer(v) }
    public mutating func f64(_ v: Double) { integer(v.bitPattern) }
    public mutating func bool(_ v: Bool) { bytes.append(v ? 1 : 0) }
    public mutating func code<E: WireCoded>(_ v: E) { bytes.append(v.wireCode) }
    /// A count or size: u32 (callers' values are far below 2^32: a frame is at most 4 GiB).
    public mutating func count(_ n: Int) { integer(UInt32(n)) }

    public mutating func string(_ s: String) {
        var s = s
        s.withUTF8 { utf8 in
            count(utf8.count)
            bytes.append(contentsOf: utf8)
        }
    }

    /// u8 0 for none, 1 then the value.
    public mutating func optionalF64(_ v: Double?) {
        bool(v != nil)
        if let v { f64(v) }
    }

    public mutating func optionalString(_ v: String?) {
        bool(v != nil)
        if let v { string(v) }
    }

    public mutating func strings(_ a: [String]) {
        count(a.count)
        for s in a { string(s) }
    }

    public mutating func int32s(_ a: [Int32]) { numbers(a) }
    public mutating func u64s(_ a: [UInt64]) { numbers(a) }
    public mutating func floats(_ a: [Float]) {
        #if _endian(little)
            asStored(a)
        #else
            numbers(a.map(\.bitPattern))
        #endif
    }

    private mutating func numbers<T: FixedWidthInteger & BitwiseCopyable>(_ a: [T]) {
        #if _endian(little)
            asStored(a)
        #else
            count(a.count)
            for v in a { integer(v) }
        #endif
    }

    /// Count, then the elements as memory holds them (little-endian on this machine).
    private mutating func asStored<T: BitwiseCopyable>(_ a: [T]) {
        count(a.count)
        a.withUnsafeBytes { bytes.append(contentsOf: $0) }
    }

    /// u32 count, then each element as `write` puts it.
    public mutating func list<T>(_ a: [T], _ write: (inout BodyEncoder, T) -> Void) {
        count(a.count)
        for x in a { write(&self, x) }
    }
}

/// Reads a body's fields in order. Every count is checked against the bytes left before anything
/// is reserved for it, so a hostile body costs at most its own size; every failure names the field.
public struct BodyDecoder: Sendable {
    let bytes: [UInt8]
    var offset = 0
    /// The body's name in errors, e.g. `assign.body`.
    let field: String

    public init(_ bytes: [UInt8], field: String) {
        self.bytes = bytes
        self.field = field
    }

    var remaining: Int { bytes.count - offset }

    public func failure(_ code: WireError.Code, _ name: String, _ detail: String) -> WireError {
        WireError(code: code, frame: 0, field: "\(field).\(name)", detail: detail)
    }

    @inline(__always) mutating func integer<T: FixedWidthInteger>(_: T.Type, _ name: String) throws(WireError) -> T {
        let n = MemoryLayout<T>.size
        guard n <= remaining else { throw failure(.truncated, name, "needs \(n) bytes, \(remaining) left") }
        defer { offset += n }
        return bytes.withUnsafeBytes { T(littleEndian: $0.loadUnaligned(fromByteOffset: offset, as: T.self)) }
    }

    public mutating func u8(_ name: String) throws(WireError) -> UInt8 { try integer(UInt8.self, name) }
    public mutating func u32(_ name: String) throws(WireError) -> UInt32 { try integer(UInt32.self, name) }
    public mutating func u64(_ name: String) throws(WireError) -> UInt64 { try integer(UInt64.self, name) }
    public mutating func f64(_ name: String) throws(WireError) -> Double {
        Double(bitPattern: try integer(UInt64.self, name))
    }

    public mutating func bool(_ name: String) throws(WireError) -> Bool {
        switch try u8(name) {
        case 0: return false
        case 1: return true
        case let v: throw failure(.badValue, name, "a flag is 0 or 1, got \(v)")
        }
    }

    /// A count of elements of at least `elementBytes` each, which the rest of the body must hold.
    public mutating func count(_ name: String, elementBytes: Int = 1) throws(WireError) -> Int {
        let n = Int(try u32(name))
        guard n <= remaining / max(elementBytes, 1) else {
            throw failure(.truncated, name, "\(n) elements of \(elementBytes)+ bytes, \(remaining) bytes left")
        }
        return n
    }

    /// Reads an enum by its u8 raw value; an unknown value is a `badValue` error.
    public mutating func enumeration<E: RawRepresentable>(_: E.Type, _ name: String) throws(WireError) -> E
    where E.RawValue == UInt8 {
        let raw = try u8(name)
        guard let v = E(rawValue: raw) else { throw failure(.badValue, name, "unknown value \(raw)") }
        return v
    }

    /// Reads a `WireCoded` enum; an unknown code is a `badValue` error.
    public mutating func code<E: WireCoded>(_: E.Type, _ name: String) throws(WireError) -> E {
        let raw = try u8(name)
        guard let v = E.allCases.first(where: { $0.wireCode == raw }) else {
            throw failure(.badValue, name, "unknown value \(raw)")
        }
        return v
    }

    public mutating func string(_ name: String) throws(WireError) -> String {
        let n = try count(name)
        defer { offset += n }
        guard let s = String(validating: bytes[offset..<(offset + n)], as: UTF8.self) else {
            throw failure(.badUTF8, name, "not UTF-8")
        }
        return s
    }

    public mutating func optionalF64(_ name: String) throws(WireError) -> Double? {
        try bool(name) ? try f64(name) : nil
    }

    public mutating func optionalString(_ name: String) throws(WireError) -> String? {
        try bool(name) ? try string(name) : nil
    }

    public mutating func strings(_ name: String) throws(WireError) -> [String] {
        try list(name, elementBytes: 4) { (d) throws(WireError) in try d.string(name) }
    }

    public mutating func int32s(_ name: String) throws(WireError) -> [Int32] { try numbers(Int32.self, name) }
    public mutating func u64s(_ name: String) throws(WireError) -> [UInt64] { try numbers(UInt64.self, name) }
    public mutating func floats(_ name: String) throws(WireError) -> [Float] {
        #if _endian(little)
            try asStored(Float.self, name)
        #else
            try numbers(UInt32.self, name).map(Float.init(bitPattern:))
        #endif
    }

    private mutating func numbers<T: FixedWidthInteger & BitwiseCopyable>(_: T.Type, _ name: String) throws(WireError)
        -> [T]
    {
        #if _endian(little)
            try asStored(T.self, name)
        #else
            try asStored(T.self, name).map { T(littleEndian: $0) }
        #endif
    }

    /// Count, then the elements copied as they lie (little-endian).
    private mutating func asStored<T: BitwiseCopyable>(_: T.Type, _ name: String) throws(WireError) -> [T] {
        let size = MemoryLayout<T>.size
        let n = try count(name, elementBytes: size)
        defer { offset += n * size }
        return [T](unsafeUninitializedCapacity: n) { buffer, initialized in
            bytes.withUnsafeBytes { raw in
                if n > 0 {
                    UnsafeMutableRawBufferPointer(buffer).copyMemory(
                        from: UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + n * size)]))
                }
            }
            initialized = n
        }
    }

    /// u32 count, then each element as `read` takes it (each at least `elementBytes` long).
    public mutating func list<T>(
        _ name: String, elementBytes: Int = 1, _ read: (inout BodyDecoder) throws(WireError) -> T
    ) throws(WireError) -> [T] {
        let n = try count(name, elementBytes: elementBytes)
        var out: [T] = []
        out.reserveCapacity(n)
        for _ in 0..<n { out.append(try read(&self)) }
        return out
    }

    public func expectEnd() throws(WireError) {
        if remaining != 0 { throw failure(.trailingBytes, "end", "\(remaining) unread bytes") }
    }
}
