import Foundation
import Tensor

/// A checkpoint's tensors, from `model.safetensors` or from the shards that
/// `model.safetensors.index.json` maps each tensor name to (transformers' sharded layout).
public struct CheckpointFiles: Sendable {
    /// Each tensor's name and the file that holds it.
    public let files: [String: SafeTensors]
    /// Where each tensor lives, by name.
    public let location: [String: String]

    public static let single = "model.safetensors"
    public static let index = "model.safetensors.index.json"

    public init(directory: URL) throws(ModelError) {
        let fm = FileManager.default
        let single = directory.appendingPathComponent(Self.single)
        if fm.fileExists(atPath: single.path) {
            let file = try Self.open(single)
            files = [Self.single: file]
            location = Dictionary(uniqueKeysWithValues: file.entries.keys.map { ($0, Self.single) })
            return
        }
        let indexURL = directory.appendingPathComponent(Self.index)
        guard fm.fileExists(atPath: indexURL.path) else {
            throw ModelError(message: "\(directory.path) has neither \(Self.single) nor \(Self.index)")
        }
        guard let data = try? Data(contentsOf: indexURL),
            let json = (try? JSONSerialization.jsonObject(with: data)) as? [String: Any],
            let map = json["weight_map"] as? [String: String]
        else {
            throw ModelError(message: "\(indexURL.path): expected an object with a weight_map of names to files")
        }
        var opened: [String: SafeTensors] = [:]
        for shard in Set(map.values).sorted() {
            guard !shard.contains("/"), !shard.hasPrefix(".") else {
                throw ModelError(message: "\(indexURL.path): shard \(shard) is not a file name in the directory")
            }
            opened[shard] = try Self.open(directory.appendingPathComponent(shard))
        }
        for (name, shard) in map where opened[shard]?.entries[name] == nil {
            throw ModelError(message: "\(indexURL.path): tensor \(name) is not in \(shard)")
        }
        files = opened
        location = map
    }

    private static func open(_ url: URL) throws(ModelError) -> SafeTensors {
        do { return try SafeTensors.read(url) } catch { throw ModelError(message: error.description) }
    }

    public var names: [String] { location.keys.sorted() }

    /// The tensor `name` as Float32 (F16 and BF16 widened exactly), checked against `shape`.
    public func float32(_ name: String, shape: [Int]) throws(ModelError) -> Tensor {
        guard let shard = location[name], let file = files[shard] else {
            throw ModelError(message: "checkpoint has no tensor \(name)")
        }
        do { return try file.float32(name, shape: shape) } catch { throw ModelError(message: error.description) }
    }
}
