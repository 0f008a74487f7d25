import ArgumentParser
import Coordinator
import Foundation
import Logging
import Protocol
import RLAIF

/// `rlaif-bench coordinator`: the real scheduler and endpoint against `--workers` simulated
/// workers over tcp loopback (`rlaif-bench swarm`, a process of its own). Reports the time to
/// register them all, the coordinator's CPU while it only takes heartbeats, jobs dispatched and
/// collected per second, and its memory.
struct CoordinatorBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "coordinator", abstract: "The coordinator at scale: simulated workers over real sockets.")

    @Option(help: "Simulated workers.") var workers = 1024
    @Option(help: "Labeling jobs in the dispatch measurement (one pair each).") var jobs = 20_000
    @Option(help: "Seconds of heartbeats alone.") var idleSeconds = 5.0
    @Option(help: "Heartbeat interval, milliseconds.") var heartbeatMs = 250

    func run() async throws {
        var logger = Logger(label: "rlaif-bench.coordinator")
        logger.logLevel = .error
        var deployment = Deployment()
        deployment.coordinator.heartbeatIntervalMs = heartbeatMs
        deployment.coordinator.heartbeatTimeoutMs = max(10_000, heartbeatMs * 20)
        let endpoint = try Endpoint.listen(on: "tcp://127.0.0.1:0", logger: logger)
        defer { endpoint.close() }
        let scheduler = Scheduler(
            endpoint: endpoint, settings: RunSettings(), deployment: deployment, events: try EventLog(url: nil),
            logger: logger)
        await scheduler.start()
        let rssBefore = Self.memory("VmRSS")

        let started = ContinuousClock.now
        let swarm = try Self.startSwarm(endpoint.address, workers: workers, heartbeatMs: heartbeatMs)
        defer { swarm.terminate() }
        let count = workers
        guard await scheduler.waitForWorkers({ count }, timeout: .seconds(300)) else {
            throw ValidationError("only \(await scheduler.liveWorkerCount) of \(workers) workers registered in 300 s")
        }
        let registered = ContinuousClock.now - started
        emit(String(format: "registered %d workers in %.2f s", workers, registered.seconds))

        let cpu0 = Self.cpuSeconds(), idle0 = ContinuousClock.now
        try await Task.sleep(for: .seconds(idleSeconds))
        let idleCPU = Self.cpuSeconds() - cpu0, idleWall = (ContinuousClock.now - idle0).seconds
        let beats = Double(workers) * idleWall * 1000 / Double(heartbeatMs)
        emit(
            String(
                format: "heartbeats: %.0f/s, coordinator CPU %.1f%% of a core (%.1f µs per heartbeat)",
                beats / idleWall, 100 * idleCPU / idleWall, 1e6 * idleCPU / beats))

        let batch = (0..<jobs).map { i in
            Job.labeling(
                LabelingSpec(pairs: [LabelingPair(id: UInt64(i), prompt: "p\(i)", first: "a", second: "b")]))
        }
        let cpu1 = Self.cpuSeconds(), dispatch0 = ContinuousClock.now
        let outputs = try await scheduler.runJobs(batch)
        let dispatch = (ContinuousClock.now - dispatch0).seconds, dispatchCPU = Self.cpuSeconds() - cpu1
        guard outputs.count == jobs else { throw ValidationError("\(outputs.count) outputs for \(jobs) jobs") }
        emit(
            String(
                format: "jobs: %d in %.2f s, %.0f/s (coordinator CPU %.1f µs per job)", jobs, dispatch,
                Double(jobs) / dispatch, 1e6 * dispatchCPU / Double(jobs)))
        emit(
            String(
                format: "coordinator memory: %.1f MB resident (%.1f MB before the workers; peak %.1f MB)",
                Self.memory("VmRSS"), rssBefore, Self.memory("VmHWM")))
        await scheduler.shutdown(reason: "benchmark done")
    }

    static func startSwarm(_ address: String, workers: Int, heartbeatMs: Int) throws -> Process {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        p.arguments = ["swarm", "--connect", address, "--workers", "\(workers)", "--heartbeat-ms", "\(heartbeatMs)"]
        try p.run()
        return p
    }

    /// This process's CPU time (user and system, every thread), seconds.
    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func seconds(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return seconds(usage.ru_utime) + seconds(usage.ru_stime)
    }

    /// A line of /proc/self/status in MB (`VmRSS`, `VmHWM`).
    static func memory(_ field: String) -> Double {
        let status = (try? String(contentsOfFile: "/proc/self/status", encoding: .utf8)) ?? ""
        let line = status.split(separator: "\n").first { $0.hasPrefix(field + ":") } ?? ""
        return (Double(line.split(separator: " ").dropFirst().first ?? "0") ?? 0) / 1024
    }
}
