import ArgumentParser
import CSgemmReference
import Foundation
import Tensor

@main
struct Bench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rlaif-bench",
        abstract: "Benchmarks of rlaif's components, each beside a reference measured in the same run.",
        subcommands: [
            TensorBench.self, SgemmTable.self, ProtocolBench.self, CodecBench.self, GPTBench.self, DecodeBench.self,
            AllReduceBench.self, AllReduceRank.self, CoordinatorBench.self, SimulatedWorkers.self, BFloat16Bench.self,
            OptimizerBench.self,
        ])

    static func main() async {
        // Before any other thread allocates: each benchmark runs with the settings of the process
        // it stands for (the transport as in the coordinator, the rest as in a worker).
        let command = CommandLine.arguments.dropFirst().first ?? ""
        HeapTuning.apply(["protocol", "codec"].contains(command) ? .messaging : .compute)
        await main(nil)
    }
}

/// A matrix product shape: (m, k) · (k, n).
struct GemmShape: Sendable {
    var m: Int, n: Int, k: Int, transposeB = false
    var label: String { "\(m)×\(k) · \(k)×\(n)\(transposeB ? "ᵀ" : "")" }
    var flops: Double { 2 * Double(m) * Double(n) * Double(k) }

    static let all: [GemmShape] = [
        GemmShape(m: 512, n: 512, k: 512), GemmShape(m: 1024, n: 1024, k: 1024), GemmShape(m: 2048, n: 2048, k: 2048),
        // Transformer shapes: QKV projection, attention output, MLP up-projection (weights transposed as in Linear).
        GemmShape(m: 4096, n: 768, k: 256), GemmShape(m: 4096, n: 256, k: 768),
        GemmShape(m: 1024, n: 3072, k: 768, transposeB: true),
    ]
}

/// `rlaif-bench tensor`: the sgemm table at 1 and 2 threads, each thread count in its own process
/// (the engine's budget is fixed per process), engine and C interleaved shape by shape.
struct TensorBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tensor", abstract: "sgemm GFLOP/s: engine vs C vs numpy.")

    @Option(help: "Thread counts to measure.") var threads: [Int] = [1, 2]
    @Option(help: "Timed calls per shape and path (best is kept).") var reps = 5
    @Flag(help: "Skip the numpy column even when numpy is installed.") var noNumpy = false

    func run() throws {
        let me = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        emit("shape                     threads  engine GF/s   C GF/s  engine/C  numpy GF/s")
        for t in threads {
            let p = Process()
            p.executableURL = me
            p.arguments = ["sgemm-table", "--threads", "\(t)", "--reps", "\(reps)"] + (noNumpy ? ["--no-numpy"] : [])
            var env = ProcessInfo.processInfo.environment
            env["RLAIF_THREADS"] = "\(t)"
            p.environment = env
            try p.run()
            p.waitUntilExit()
            if p.terminationStatus != 0 { throw ExitCode(p.terminationStatus) }
        }
    }
}

struct SgemmTable: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "sgemm-table", abstract: "One process, one thread count.", shouldDisplay: false)

    @Option var threads = 1
    @Option var reps = 5
    @Flag var noNumpy = false

    func run() async throws {
        Engine.configure(threads: threads)
        let engine = Engine.shared
        let numpy = noNumpy ? [:] : numpyGflops(threads: threads, reps: reps)
        for shape in GemmShape.all {
            var rng = RandomStream(seed: 7, purpose: .scratch)
            let a = Tensor.randomUniform([shape.m, shape.k], low: -0.5, high: 0.5, rng: &rng)
            let b = Tensor.randomUniform(
                shape.transposeB ? [shape.n, shape.k] : [shape.k, shape.n], low: -0.5, high: 0.5, rng: &rng)
            var engineBest = Double.infinity, cBest = 0.0
            // One untimed round first: the pool's threads and the allocator's pages warm up.
            _ = await engine.run { a.matmul(b, transposeOther: shape.transposeB) }
            // Interleave the two paths so drift in machine load hits both alike.
            for _ in 0..<reps {
                let seconds = await engine.run { () -> Double in
                    let t0 = ContinuousClock.now
                    _ = a.matmul(b, transposeOther: shape.transposeB)
                    let d = ContinuousClock.now - t0
                    return Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18
                }
                engineBest = min(engineBest, seconds)
                csgemm_reference_set_threads(Int32(threads))
                defer { csgemm_reference_set_threads(1) }  // the engine runs BLAS single-threaded
                cBest = max(
                    cBest,
                    csgemm_reference_gflops(
                        Int32(shape.m), Int32(shape.n), Int32(shape.k), 0, shape.transposeB ? 1 : 0, 1))
            }
            let engineGflops = shape.flops / engineBest / 1e9
            let np = numpy[shape.label].map { String(format: "%10.1f", $0) } ?? "         –"
            let label = shape.label.padding(toLength: 26, withPad: " ", startingAt: 0)
            emit(
                label
                    + String(
                        format: "%7d %12.1f %8.1f %8.1f%% %@", threads, engineGflops, cBest, 100 * engineGflops / cBest,
                        np))
        }
    }

    /// numpy's matmul (its own bundled BLAS) on the same shapes, when python3 and numpy exist.
    func numpyGflops(threads: Int, reps: Int) -> [String: Double] {
        let script = """
            import sys, time
            import numpy as np
            reps = int(sys.argv[1])
            for m, n, k, tb, label in [\(GemmShape.all.map { "(\($0.m),\($0.n),\($0.k),\($0.transposeB ? "True" : "False"),'\($0.label)')" }.joined(separator: ","))]:
                a = np.random.rand(m, k).astype(np.float32); b = np.random.rand(n, k).astype(np.float32) if tb else np.random.rand(k, n).astype(np.float32)
                best = 1e30
                for _ in range(reps):
                    t0 = time.perf_counter(); (a @ (b.T if tb else b)); best = min(best, time.perf_counter() - t0)
                print(label + '\\t' + str(2*m*n*k/best/1e9))
            """
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", script, "\(reps)"]
        var env = ProcessInfo.processInfo.environment
        for key in ["OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"] { env[key] = "\(threads)" }
        p.environment = env
        let pipe = Pipe()
        p.standardOutput = pipe
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return [:] }
        let data = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0 else { return [:] }
        var out: [String: Double] = [:]
        for line in String(decoding: data, as: UTF8.self).split(separator: "\n") {
            let parts = line.split(separator: "\t")
            if parts.count == 2, let v = Double(parts[1]) { out[String(parts[0])] = v }
        }
        return out
    }
}

/// Writes a line unbuffered, so lines from parent and child processes come out in order.
func emit(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
