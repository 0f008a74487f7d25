import CSharedMemory
import Foundation

/// The predecessor's segment a rank follows: named by a location message that came in frames in
/// ring epoch `epoch` (in an epoch only the predecessor sends this rank slices), kept mapped here
/// so that a look at its doorbell is two loads, and how far this rank has read the records of
/// reduction `reduction`.
struct DoorbellWatch {
    let segment: InboundSegments.SegmentID
    let mapping: SegmentMapping
    let epoch: UInt32
    var reduction: (UInt64, UInt32)?
    var cursor = 0

    /// What the segment's doorbell says, read whole: the reduction being written and where its
    /// records lie; nil while the writer changes it or when it is not coherent.
    func doorbell() -> (reduction: (UInt64, UInt32), start: Int, end: Int)? {
        let m = mapping
        let word = (m.base + SegmentLayout.doorbellWord).assumingMemoryBound(to: UInt64.self)
        let version = rlaif_seq_load(word)
        guard version != 0 else { return nil }
        let field = { (offset: Int) in m.base.load(fromByteOffset: offset, as: UInt64.self) }
        let (step, epoch) = (field(SegmentLayout.doorbellStep), field(SegmentLayout.doorbellEpoch))
        let (start, end) = (field(SegmentLayout.doorbellStart), field(SegmentLayout.doorbellEnd))
        guard rlaif_seq_recheck(word) == version, epoch <= UInt64(UInt32.max), start <= end, end <= UInt64(m.size)
        else { return nil }
        return ((step, UInt32(epoch)), Int(start), Int(end))
    }
}

extension InboundSegments {
    /// A watch on the segment `location` names, in ring epoch `epoch`; nil when it cannot be opened.
    func watch(_ location: SharedSlice, epoch: UInt32) -> DoorbellWatch? {
        guard let m = try? mapping(location) else { return nil }
        return DoorbellWatch(segment: SegmentID(location), mapping: m, epoch: epoch)
    }

    /// The slice recorded at `offset` of the watched segment, its tensors read in place (the
    /// caller confirms them after use, as for a location that came in frames), and where the next
    /// record starts. The record's control frame is decoded and checked as a message from the
    /// network is, and must name this record.
    func record(of watch: DoorbellWatch, at offset: Int, limits: WireLimits) throws(WireError) -> (
        chunk: Wire.GradientChunk, next: Int
    ) {
        let m = watch.mapping
        guard offset % 64 == 0, offset >= SegmentLayout.headerBytes, offset + SegmentLayout.headerBytes <= m.size
        else { throw Self.refusal("no record can start at \(offset)") }
        let record = m.base + offset
        let word = record.assumingMemoryBound(to: UInt64.self)
        let sequence = rlaif_seq_load(word)
        let field = { (at: Int) in Int(truncatingIfNeeded: record.load(fromByteOffset: at, as: UInt64.self)) }
        let (controlAt, controlLength) = (
            field(SegmentLayout.recordControlOffset), field(SegmentLayout.recordControlLength)
        )
        let next = field(SegmentLayout.recordNext)
        guard sequence != 0, controlAt >= SegmentLayout.headerBytes, controlLength > 0, next > offset,
            next <= m.size, controlAt <= next - offset - controlLength
        else { throw Self.refusal("the record at \(offset) is not whole") }
        let control = try Wire.decodeControl(
            UnsafeRawBufferPointer(start: record + controlAt, count: controlLength), limits: limits)
        guard rlaif_seq_recheck(word) == sequence else { throw Self.refusal("the record at \(offset) changed") }
        guard case .gradientChunk(let c) = control.message, let shared = c.shared, SegmentID(shared) == watch.segment,
            shared.offset == UInt64(offset), shared.sequence == sequence
        else { throw Self.refusal("the record at \(offset) names another place") }
        let frames = try read(shared, byteCounts: control.descriptors.map(\.byteCount))
        guard case .gradientChunk(let chunk) = try Wire.complete(control, tensorFrames: frames) else {
            throw Self.refusal("the record at \(offset) is not a gradient chunk")
        }
        return (chunk, next)
    }
}
