import CSharedMemory
import Foundation
import Tensor

#if canImport(Glibc)
    import Glibc
#endif

/// Where a ring slice's bytes lie when its sender shares memory with the receiver: a record in
/// the sender's outbound segment, which the receiver opens through `/proc/PID/fd/FD`.
public struct SharedSlice: Sendable, Equatable {
    public var pid: UInt32
    public var descriptor: UInt32
    /// Random, written at the head of the segment: a recycled pid or descriptor names another file.
    public var token: [UInt64]
    /// The record's byte offset in the segment (64-byte aligned).
    public var offset: UInt64
    /// The record's seqlock word: the bytes are whole while the word still holds it.
    public var sequence: UInt64

    public init(pid: UInt32, descriptor: UInt32, token: [UInt64], offset: UInt64, sequence: UInt64) {
        (self.pid, self.descriptor, self.token, self.offset, self.sequence) = (pid, descriptor, token, offset, sequence)
    }
}

/// The layout both ends agree on: a 64-byte segment header (magic, token, doorbell), then
/// records, each starting on 64 bytes: a 64-byte header (seqlock word, where the record's control
/// frame lies, where the next record starts), the tensors' bytes, and the control frame that
/// names the record (the location message, so a reader that follows the doorbell decodes it as
/// if it had come through libzmq).
enum SegmentLayout {
    static let magic: UInt64 = 0x4D48_5346_4941_4C52  // "RLAIFSHM"
    static let headerBytes = 64
    /// The doorbell, in the segment header: a seqlock word over the reduction being written
    /// (step, epoch) and the byte range its records fill so far (start, end).
    static let doorbellWord = 24
    static let doorbellStep = 32
    static let doorbellEpoch = 40
    static let doorbellStart = 48
    static let doorbellEnd = 56
    /// In a record's header, after its seqlock word: the control frame's offset in the record
    /// and its length, and the offset of the record that follows.
    static let recordControlOffset = 8
    static let recordControlLength = 16
    static let recordNext = 24
    static func aligned(_ n: Int) -> Int { (n + 63) & ~63 }
    static func recordBytes(_ tensorBytes: [Int]) -> Int { headerBytes + tensorBytes.reduce(0) { $0 + aligned($1) } }
}

/// This rank's outbound segment: slices for a successor on the same host are written here and
/// only their location travels over ZeroMQ. Two halves alternate between reductions, so the
/// successor can still read the last reduction's records while the next one is written; before a
/// half is reused, the words of its old records are cleared, so a reader that was too slow sees
/// the record gone instead of reading torn bytes.
final class OutboundSegment {
    let descriptor: Int32
    private let pid = UInt32(getpid())
    let token: [UInt64]
    private let base: UnsafeMutableRawPointer
    private let size: Int
    private var half = 0
    private var cursor = 0
    private var reduction: (UInt64, UInt32)?
    private var written: [[Int]] = [[], []]
    private var sequence: UInt64 = 0
    private var doorbell: UInt64 = 0

    /// Nil where the system gives no shared memory of `bytes` (the ring then uses sockets only).
    init?(bytes: Int) {
        let fd = rlaif_segment_create(bytes)
        guard fd >= 0 else { return nil }
        guard let mapped = mmap(nil, bytes, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0), mapped != MAP_FAILED else {
            close(fd)
            return nil
        }
        descriptor = fd
        base = mapped
        size = bytes
        var generator = SystemRandomNumberGenerator()
        token = [generator.next(), generator.next()]
        base.storeBytes(of: SegmentLayout.magic.littleEndian, as: UInt64.self)
        (base + 8).storeBytes(of: token[0], as: UInt64.self)
        (base + 16).storeBytes(of: token[1], as: UInt64.self)
    }

    deinit {
        munmap(base, size)
        close(descriptor)
    }

    private var halfBytes: Int { (size - SegmentLayout.headerBytes) / 2 & ~63 }

    /// Writes `chunk`'s tensors as one record and returns the location message to send in their
    /// place, or nil when this reduction's half has no room left (the slice then travels in
    /// frames). The message is written into the record too, for a reader that follows the doorbell.
    func write(_ chunk: Wire.GradientChunk) -> EncodedMessage? {
        var encoded: EncodedMessage?
        let written = write(chunk.payload.tensors, reduction: (chunk.step, chunk.ringEpoch)) { slice in
            var c = chunk
            c.shared = slice
            encoded = Wire.encode(.gradientChunk(c))
            return encoded?.control ?? []
        }
        return written == nil ? nil : encoded
    }

    /// Writes `tensors` as one record of reduction `r`, with the control frame `control` makes
    /// for the record's location, or returns nil when this reduction's half has no room left.
    func write(
        _ tensors: [WireTensor], reduction r: (UInt64, UInt32), control: (SharedSlice) -> [UInt8] = { _ in [] }
    ) -> SharedSlice? {
        if reduction.map({ $0 != r }) ?? true { begin(r) }
        let lengths = tensors.map(\.byteCount)
        let controlAt = SegmentLayout.recordBytes(lengths)  // the header and the tensors come first
        let offset = SegmentLayout.headerBytes + half * halfBytes + cursor
        let slice = SharedSlice(
            pid: pid, descriptor: UInt32(descriptor), token: token, offset: UInt64(offset), sequence: sequence + 1)
        let frame = control(slice)
        let bytes = controlAt + SegmentLayout.aligned(frame.count)
        guard cursor + bytes <= halfBytes else { return nil }
        let record = base + offset
        let word = record.assumingMemoryBound(to: UInt64.self)
        rlaif_seq_clear(word)
        var at = offset + SegmentLayout.headerBytes
        for (t, n) in zip(tensors, lengths) {
            t.withBytes { rlaif_segment_copy(base + at, $0, n) }
            at += SegmentLayout.aligned(n)
        }
        frame.withUnsafeBytes { bytes in
            if let from = bytes.baseAddress {
                (record + controlAt).copyMemory(from: from, byteCount: bytes.count)
            }
        }
        (record + SegmentLayout.recordControlOffset).storeBytes(of: UInt64(controlAt), as: UInt64.self)
        (record + SegmentLayout.recordControlLength).storeBytes(of: UInt64(frame.count), as: UInt64.self)
        (record + SegmentLayout.recordNext).storeBytes(of: UInt64(offset + bytes), as: UInt64.self)
        sequence += 1
        rlaif_seq_publish(word, sequence)
        written[half].append(offset)
        cursor += bytes
        ring(end: offset + bytes)
        return slice
    }

    /// Switches to the other half for reduction `r`, clearing the records left there.
    private func begin(_ r: (UInt64, UInt32)) {
        reduction = r
        half = 1 - half
        for offset in written[half] { rlaif_seq_clear((base + offset).assumingMemoryBound(to: UInt64.self)) }
        written[half].removeAll(keepingCapacity: true)
        cursor = 0
        ring(end: SegmentLayout.headerBytes + half * halfBytes)
    }

    /// Publishes the doorbell: this reduction's records lie from its half's start up to `end`.
    private func ring(end: Int) {
        let word = (base + SegmentLayout.doorbellWord).assumingMemoryBound(to: UInt64.self)
        rlaif_seq_clear(word)
        let (step, epoch) = reduction ?? (0, 0)
        (base + SegmentLayout.doorbellStep).storeBytes(of: step, as: UInt64.self)
        (base + SegmentLayout.doorbellEpoch).storeBytes(of: UInt64(epoch), as: UInt64.self)
        (base + SegmentLayout.doorbellStart).storeBytes(
            of: UInt64(SegmentLayout.headerBytes + half * halfBytes), as: UInt64.self)
        (base + SegmentLayout.doorbellEnd).storeBytes(of: UInt64(end), as: UInt64.self)
        doorbell += 1
        rlaif_seq_publish(word, doorbell)
    }
}

/// A predecessor's segment, mapped read-only; unmapped when the last frame reading it is gone.
final class SegmentMapping: @unchecked Sendable {  // immutable
    let base: UnsafeRawPointer
    let size: Int
    init(base: UnsafeRawPointer, size: Int) { (self.base, self.size) = (base, size) }
    deinit { munmap(UnsafeMutableRawPointer(mutating: base), size) }
}

/// The predecessors' segments this rank has opened, read-only (a few: one per predecessor the
/// ring has had; the oldest is dropped past `limit`).
final class InboundSegments {
    /// A segment as a shared slice names it.
    struct SegmentID: Hashable {
        let pid: UInt32
        let descriptor: UInt32
        let token: [UInt64]
        init(_ s: SharedSlice) { (pid, descriptor, token) = (s.pid, s.descriptor, s.token) }
    }
    private var open: [SegmentID: SegmentMapping] = [:]
    private var order: [SegmentID] = []
    private let limit = 8
    /// Larger segments are refused: a hostile peer cannot make this rank map arbitrary files.
    static let maxBytes = 4 << 30

    /// Frames over the record at `slice`, one per tensor of `byteCounts`, read in place: the
    /// caller checks `isIntact` once it has used them (the writer may reuse the space only after
    /// clearing the record's word, so a torn read is always seen).
    func read(_ slice: SharedSlice, byteCounts: [Int]) throws(WireError) -> [ZMQFrame] {
        let m = try mapping(slice)
        let bytes = SegmentLayout.recordBytes(byteCounts)
        let (end, overflow) = slice.offset.addingReportingOverflow(UInt64(bytes))
        guard slice.offset % 64 == 0, slice.offset >= UInt64(SegmentLayout.headerBytes), !overflow,
            end <= UInt64(m.size)
        else { throw Self.refusal("the record at \(slice.offset) (\(bytes) bytes) lies outside the segment") }
        guard slice.sequence != 0, rlaif_seq_load(Self.word(m, slice)) == slice.sequence else {
            throw Self.refusal("the record at \(slice.offset) was overwritten before it was read")
        }
        var at = Int(slice.offset) + SegmentLayout.headerBytes
        var frames: [ZMQFrame] = []
        for n in byteCounts {
            frames.append(ZMQFrame(borrowing: UnsafeRawBufferPointer(start: m.base + at, count: n), owner: m))
            at += SegmentLayout.aligned(n)
        }
        return frames
    }

    /// Whether the record at `slice` still holds what was read from it.
    func isIntact(_ slice: SharedSlice) -> Bool {
        guard let m = open[SegmentID(slice)] else { return false }
        return rlaif_seq_recheck(Self.word(m, slice)) == slice.sequence
    }

    private static func word(_ m: SegmentMapping, _ slice: SharedSlice) -> UnsafePointer<UInt64> {
        (m.base + Int(slice.offset)).assumingMemoryBound(to: UInt64.self)
    }

    func mapping(_ slice: SharedSlice) throws(WireError) -> SegmentMapping {
        let key = SegmentID(slice)
        if let m = open[key] { return m }
        let path = "/proc/\(slice.pid)/fd/\(slice.descriptor)"
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw Self.refusal(
                "cannot open \(path) (\(String(cString: strerror(errno)))): ranks that do not share /proc need --ring-shared-memory off"
            )
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG, info.st_uid == geteuid(),
            info.st_size >= off_t(SegmentLayout.headerBytes), info.st_size <= off_t(Self.maxBytes),
            rlaif_segment_is_sealed(fd) != 0
        else { throw Self.refusal("\(path) is not a sealed ring segment of this user") }
        let size = Int(info.st_size)
        guard let mapped = mmap(nil, size, PROT_READ, MAP_SHARED, fd, 0), mapped != MAP_FAILED else {
            throw Self.refusal("cannot map \(path)")
        }
        let m = SegmentMapping(base: UnsafeRawPointer(mapped), size: size)
        let header = (0..<3).map { m.base.load(fromByteOffset: 8 * $0, as: UInt64.self) }
        guard header[0] == SegmentLayout.magic.littleEndian, Array(header[1...]) == slice.token else {
            throw Self.refusal("\(path) is not the segment its token names")
        }
        open[key] = m
        order.append(key)
        if order.count > limit { open[order.removeFirst()] = nil }
        return m
    }

    static func refusal(_ detail: String) -> WireError {
        WireError(code: .badValue, frame: 0, field: "gradientChunk.shared", detail: detail)
    }
}
