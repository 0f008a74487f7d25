import Foundation
import Tensor

/// The safetensors format (Hugging Face): an 8-byte little-endian header length N, N bytes of
/// JSON mapping each tensor name to `{"dtype", "shape", "data_offsets": [begin, end]}` (offsets
/// relative to the data section; an optional `__metadata__` object of strings), then the raw
/// little-endian data.
///
/// ```swift
/// let file = try SafeTensors.read(url)
/// let wte = try file.float32("transformer.wte.weight", shape: [50257, 768])
/// ```
public struct SafeTensors: Sendable {
    public enum DType: String, Sendable {
        case f32 = "F32", i32 = "I32", f16 = "F16", bf16 = "BF16", i64 = "I64"
        var size: Int {
            switch self {
            case .f32, .i32: 4
            case .f16, .bf16: 2
            case .i64: 8
            }
        }
    }

    public struct Entry: Sendable {
        public let dtype: DType
        public let shape: [Int]
        /// Byte range inside the data section.
        public let range: Range<Int>
    }

    public let file: String
    public let entries: [String: Entry]
    public let metadata: [String: String]
    private let data: Data

    /// Largest header accepted: far above any real checkpoint's, far below memory trouble.
    static let maxHeaderBytes = 100 << 20

    // MARK: Reading

    public static func read(_ url: URL) throws(SafeTensorsError) -> SafeTensors {
        let bytes: Data
        do { bytes = try Data(contentsOf: url, options: .alwaysMapped) } catch {
            throw SafeTensorsError(
                file: url.path, tensor: nil, message: "cannot be read: \(error.localizedDescription)")
        }
        return try parse(bytes, file: url.path)
    }

    /// Validates the header against the data before anything is used.
    public static func parse(_ bytes: Data, file: String = "<memory>") throws(SafeTensorsError) -> SafeTensors {
        func fail(_ message: String, _ tensor: String? = nil) -> SafeTensorsError {
            SafeTensorsError(file: file, tensor: tensor, message: message)
        }
        guard bytes.count >= 8 else { throw fail("too short for a safetensors header (\(bytes.count) bytes)") }
        let headerLength = bytes.prefix(8).enumerated().reduce(UInt64(0)) {
            $0 | UInt64($1.element) << (8 * UInt64($1.offset))
        }
        guard headerLength <= UInt64(min(maxHeaderBytes, bytes.count - 8)) else {
            throw fail("header length \(headerLength) exceeds the file (\(bytes.count) bytes)")
        }
        let headerEnd = 8 + Int(headerLength)
        let json: Any
        do { json = try JSONSerialization.jsonObject(with: bytes.subdata(in: 8..<headerEnd)) } catch {
            throw fail("header is not valid JSON")
        }
        guard let header = json as? [String: Any] else { throw fail("header is not a JSON object") }
        let dataSize = bytes.count - headerEnd
        var entries: [String: Entry] = [:]
        var metadata: [String: String] = [:]
        for (name, value) in header {
            if name == "__metadata__" {
                guard let m = value as? [String: String] else { throw fail("__metadata__ must map strings to strings") }
                metadata = m
                continue
            }
            guard let info = value as? [String: Any], let dtypeName = info["dtype"] as? String,
                let shape = info["shape"] as? [Int], let offsets = info["data_offsets"] as? [Int], offsets.count == 2
            else { throw fail("entry needs dtype, shape and two data_offsets", name) }
            guard let dtype = DType(rawValue: dtypeName) else { throw fail("unsupported dtype \(dtypeName)", name) }
            guard shape.allSatisfy({ $0 >= 0 }) else { throw fail("negative dimension in shape \(shape)", name) }
            let (begin, end) = (offsets[0], offsets[1])
            guard begin >= 0, begin <= end, end <= dataSize else {
                throw fail("data offsets [\(begin), \(end)] outside the data section of \(dataSize) bytes", name)
            }
            var count = 1
            for d in shape {
                let (p, overflow) = count.multipliedReportingOverflow(by: d)
                guard !overflow else { throw fail("shape \(shape) overflows", name) }
                count = p
            }
            guard count.multipliedReportingOverflow(by: dtype.size).partialValue == end - begin else {
                throw fail(
                    "shape \(shape) of \(dtypeName) needs \(count * dtype.size) bytes, offsets give \(end - begin)",
                    name)
            }
            entries[name] = Entry(dtype: dtype, shape: shape, range: (headerEnd + begin)..<(headerEnd + end))
        }
        return SafeTensors(file: file, entries: entries, metadata: metadata, data: bytes)
    }

    private init(file: String, entries: [String: Entry], metadata: [String: String], data: Data) {
        self.file = file
        self.entries = entries
        self.metadata = metadata
        self.data = data
    }

    /// A float tensor (F32, or F16/BF16 widened), checked against `shape` when given.
    public func float32(_ name: String, shape: [Int]? = nil) throws(SafeTensorsError) -> Tensor {
        guard let e = entries[name] else {
            throw SafeTensorsError(file: file, tensor: name, message: "missing")
        }
        if let shape, shape != e.shape {
            throw SafeTensorsError(file: file, tensor: name, message: "has shape \(e.shape), expected \(shape)")
        }
        let out = Tensor(zeros: e.shape)
        let n = out.count
        data.withUnsafeBytes { raw in
            let src = UnsafeRawBufferPointer(rebasing: raw[e.range])
            switch e.dtype {
            case .f32:
                for i in 0..<n {
                    out.pointer[i] = Float(
                        bitPattern: UInt32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: UInt32.self)))
                }
            case .f16:
                for i in 0..<n {
                    out.pointer[i] = Float(
                        Float16(
                            bitPattern: UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self)))
                    )
                }
            case .bf16:
                for i in 0..<n {
                    let bits =
                        UInt32(UInt16(littleEndian: src.loadUnaligned(fromByteOffset: 2 * i, as: UInt16.self))) << 16
                    out.pointer[i] = Float(bitPattern: bits)
                }
            case .i32:
                for i in 0..<n {
                    out.pointer[i] = Float(
                        Int32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self)))
                }
            case .i64:
                for i in 0..<n {
                    out.pointer[i] = Float(
                        Int64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self)))
                }
            }
        }
        return out
    }

    /// An integer tensor (I32, or I64 narrowed when every value fits).
    public func int32(_ name: String) throws(SafeTensorsError) -> TokenTensor {
        guard let e = entries[name] else { throw SafeTensorsError(file: file, tensor: name, message: "missing") }
        let n = e.shape.reduce(1, *)
        var ids = [Int32](repeating: 0, count: n)
        var overflow = false
        data.withUnsafeBytes { raw in
            let src = UnsafeRawBufferPointer(rebasing: raw[e.range])
            for i in 0..<n {
                switch e.dtype {
                case .i32: ids[i] = Int32(littleEndian: src.loadUnaligned(fromByteOffset: 4 * i, as: Int32.self))
                case .i64:
                    let v = Int64(littleEndian: src.loadUnaligned(fromByteOffset: 8 * i, as: Int64.self))
                    if let x = Int32(exactly: v) { ids[i] = x } else { overflow = true }
                default: overflow = true
                }
            }
        }
        if overflow || !(e.dtype == .i32 || e.dtype == .i64) {
            throw SafeTensorsError(
                file: file, tensor: name, message: "is \(e.dtype.rawValue), expected 32-bit integers")
        }
        return TokenTensor(shape: e.shape, ids: ids)
    }

    // MARK: Writing

    /// Writes float tensors (F32) in name order, with optional metadata, atomically.
    public static func write(
        _ tensors: [(String, Tensor)], metadata: [String: String] = ["format": "pt"], to url: URL
    ) throws(SafeTensorsError) {
        let out = try encode(tensors, metadata: metadata, file: url.path)
        do { try out.write(to: url, options: .atomic) } catch {
            throw SafeTensorsError(
                file: url.path, tensor: nil, message: "cannot be written: \(error.localizedDescription)")
        }
    }

    /// The file's bytes for float tensors (F32) in name order; `file` names it in errors.
    public static func encode(
        _ tensors: [(String, Tensor)], metadata: [String: String] = ["format": "pt"], file: String = "<memory>"
    ) throws(SafeTensorsError) -> Data {
        var header: [String: Any] = ["__metadata__": metadata]
        var offset = 0
        let ordered = tensors.sorted { $0.0 < $1.0 }
        for (name, t) in ordered {
            header[name] = ["dtype": "F32", "shape": t.shape, "data_offsets": [offset, offset + 4 * t.count]]
            offset += 4 * t.count
        }
        var json: Data
        do { json = try JSONSerialization.data(withJSONObject: header, options: [.sortedKeys]) } catch {
            throw SafeTensorsError(file: file, tensor: nil, message: "cannot encode header: \(error)")
        }
        // Pad the header with spaces to 8 bytes, so the data section is aligned.
        while json.count % 8 != 0 { json.append(0x20) }
        var out = Data(capacity: 8 + json.count + offset)
        withUnsafeBytes(of: UInt64(json.count).littleEndian) { out.append(contentsOf: $0) }
        out.append(json)
        for (_, t) in ordered {
            #if _endian(little)
                out.append(UnsafeBufferPointer(start: t.pointer, count: t.count))
            #else
                for v in t.scalars { withUnsafeBytes(of: v.bitPattern.littleEndian) { out.append(contentsOf: $0) } }
            #endif
        }
        return out
    }
}
