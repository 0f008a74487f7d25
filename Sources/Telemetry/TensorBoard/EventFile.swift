import Foundation
import SwiftProtobuf

/// A TensorBoard event file: TFRecords (length, masked CRC-32C of the length, the serialized
/// `Event`, masked CRC-32C of it), the first holding the file version TensorBoard checks.
final class EventFile {
    private let handle: FileHandle
    let url: URL

    /// Creates `events.out.tfevents.<seconds>.<host>.rlaif` in `directory`.
    init(directory: URL) throws {
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let now = Date().timeIntervalSince1970
        let host = ProcessInfo.processInfo.hostName.split(separator: ".").first.map(String.init) ?? "localhost"
        url = directory.appendingPathComponent("events.out.tfevents.\(Int(now)).\(host).rlaif")
        guard FileManager.default.createFile(atPath: url.path, contents: nil) else {
            throw CocoaError(.fileWriteNoPermission, userInfo: [NSFilePathErrorKey: url.path])
        }
        handle = try FileHandle(forWritingTo: url)
        var version = Tensorflow_Event()
        version.wallTime = now
        version.fileVersion = "brain.Event:2"
        try write([version])
    }

    /// Several events in one write: a step's scalars cost one system call, not one each.
    func write(_ events: [Tensorflow_Event]) throws {
        var records = Data()
        for event in events { records.append(Self.record(try event.serializedBytes())) }
        try handle.write(contentsOf: records)
    }

    /// One TFRecord around `data`.
    static func record(_ data: [UInt8]) -> Data {
        var out = Data(capacity: data.count + 16)
        let length = withUnsafeBytes(of: UInt64(data.count).littleEndian) { Array($0) }
        func append(_ value: UInt32) { withUnsafeBytes(of: value.littleEndian) { out.append(contentsOf: $0) } }
        out.append(contentsOf: length)
        append(CRC32C.masked(length))
        out.append(contentsOf: data)
        append(CRC32C.masked(data))
        return out
    }

    func close() { try? handle.close() }
}
