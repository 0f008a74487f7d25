import ArgumentParser
import Coordinator
import Foundation
import Tensor
import Worker

/// `rlaif launch [CONFIG]`: runs the job that `cluster.yaml` describes.
///
/// Until the coordinator and pipeline land, the job is the engine's end-to-end check: a seeded
/// MLP trained on XOR through the shared engine, with its metrics in `runs/<name>/metrics.jsonl`
/// and a checksum of the final weights (the same seed gives the same checksum).
struct Launch: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Run the job described by a cluster configuration.")

    @Argument(help: "Path to cluster.yaml; without it, the embedded defaults are used.")
    var config: String?

    @Option(help: "Run directory (default: runs/<run name>).")
    var runDir: String?

    @Option(help: "Threads of the tensor engine (default: all cores).")
    var threads: Int?

    func validate() throws {
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads).") }
    }

    func run() async throws {
        let cluster: ClusterConfig
        do {
            cluster = try config.map { path throws(ConfigError) in try ClusterConfig.load(path: path) } ?? .defaults
        } catch {
            throw ValidationError(error.description)
        }
        if let threads { WorkerSettings(threads: threads).configureEngine() }
        let directory = URL(fileURLWithPath: runDir ?? "runs/\(cluster.run.name)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        let metrics = directory.appendingPathComponent("metrics.jsonl")
        print("rlaif: run \(cluster.run.name), seed \(cluster.run.seed), engine threads \(Engine.shared.threads)")
        if cluster.keys == nil { print("rlaif: \(ClusterConfig.openClusterWarning)") }
        let result = try await EngineCheckJob(seed: cluster.run.seed).run(metrics: metrics)
        print(
            String(
                format: "rlaif: XOR loss %.4f → %.4f in %d steps, accuracy %d/4", result.initialLoss, result.finalLoss,
                result.steps, result.correct))
        print("rlaif: weights checksum \(result.checksum)")
        print("rlaif: metrics in \(metrics.path)")
    }
}
