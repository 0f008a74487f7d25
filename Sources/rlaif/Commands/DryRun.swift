import Coordinator
import Foundation
import Protocol
import RLAIF

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// `rlaif launch --dry-run`: everything a run needs, checked before anything starts — the
/// configuration, data files, keys, the model's memory, the labeler's reachability, the
/// coordinator's port and the disk — with every problem reported at once, then the plan.
struct DryRun {
    let options: RunOptions
    let localWorkers: Int?
    let threads: Int?
    let slurm: SlurmAllocation?

    func run() async throws {
        let reading = ClusterConfig.read(path: options.config, overrides: options.overrides)
        var problems = reading.problems.map(\.description)
        print("rlaif: dry run of \(options.config ?? "the embedded defaults"): nothing is started")
        if let config = reading.config {
            var demonstrations = config.settings.task.demonstrationCount, dataPairs = 0
            if !problems.contains(where: { $0.contains("task.") }) {
                do {
                    let tokenizer = try RunModel(settings: config.settings).tokenizer
                    let task = try TaskDataFactory.make(config.settings, tokenizer: tokenizer)
                    (demonstrations, dataPairs) = (task.demonstrations().count, task.preferencePairs.count)
                } catch { problems.append("\(error)") }
            }
            if let problem = await labelerProblem(config.settings.labeler) { problems.append(problem) }
            if let problem = portProblem(config.deployment.coordinator.bind) { problems.append(problem) }
            let plan = RunPlan(settings: config.settings, demonstrations: demonstrations, dataPairs: dataPairs)
            if let problem = diskProblem(options.directory(config), plan: plan) { problems.append(problem) }
            printPlan(config, plan)
        }
        guard problems.isEmpty else {
            print("problems (\(problems.count)):")
            for p in problems { print("  - \(p)") }
            throw CommandFailure("the dry run found \(problems.count) problem(s); nothing was started")
        }
        print("rlaif: ready; the same command without --dry-run runs it")
    }

    func printPlan(_ config: ClusterConfig, _ plan: RunPlan) {
        let d = config.deployment
        if let slurm {
            print("workers:    Slurm job \(slurm.jobID): \(slurm.tasks) × \(slurm.cpusPerTask) thread(s), by srun")
        } else {
            let local = localWorkers ?? d.workers.local
            let perWorker = threadsPerWorker(threads, deployment: d, workers: local)
            var line = "workers:    \(local) local × \(perWorker) thread(s)"
            if !d.workers.ssh.isEmpty { line += "; over ssh: \(d.workers.ssh.joined(separator: ", "))" }
            print(line + (local == 0 && d.workers.ssh.isEmpty ? " (workers connect with `rlaif worker`)" : ""))
        }
        print("phases:")
        for phase in plan.phases { print("  \(phase)") }
        print("memory:     at least \(RunPlan.size(config.settings.workerMemoryEstimate)) per worker")
        let keep = config.settings.checkpoint.keep
        print(
            "checkpoint: \(RunPlan.size(plan.checkpointBytes)) each, \(keep) kept "
                + "(\(RunPlan.size(plan.checkpointBytes * Double(keep + 1))) while the next is written)")
        print("run dir:    \(options.directory(config).path)")
    }

    /// An openai labeler's server must answer (any HTTP status will do); a command labeler's
    /// program must exist.
    func labelerProblem(_ labeler: RunSettings.LabelerSection) async -> String? {
        switch labeler.kind {
        case .rubric: return nil
        case .command:
            let program = labeler.command.split(separator: " ").first.map(String.init) ?? ""
            let p = Process()
            p.executableURL = URL(fileURLWithPath: "/bin/sh")
            p.arguments = ["-c", "command -v \"$0\" >/dev/null", program]
            guard (try? p.run()) != nil else { return "labeler.command: /bin/sh cannot start" }
            p.waitUntilExit()
            return p.terminationStatus == 0 ? nil : "labeler.command: \(program) is not a program here"
        case .openai:
            guard let url = URL(string: labeler.url)?.appendingPathComponent("models") else {
                return "labeler.url: \(labeler.url) is not a URL"
            }
            do {
                _ = try await URLSession.shared.data(for: URLRequest(url: url, timeoutInterval: 5))
                return nil
            } catch {
                return "labeler.url: \(labeler.url) cannot be reached (\(error.localizedDescription))"
            }
        }
    }

    /// The coordinator's address must be free to listen on.
    func portProblem(_ bind: String) -> String? {
        do {
            let endpoint = try Endpoint.listen(on: bind)
            endpoint.close()
            return nil
        } catch {
            return "coordinator.bind: cannot listen on \(bind) (\(error))"
        }
    }

    /// The disk under the run directory must hold the checkpoints kept and the one being written.
    func diskProblem(_ directory: URL, plan: RunPlan) -> String? {
        var existing = directory
        while !FileManager.default.fileExists(atPath: existing.path), existing.path != "/" {
            existing.deleteLastPathComponent()
        }
        guard let attributes = try? FileManager.default.attributesOfFileSystem(forPath: existing.path),
            let free = (attributes[.systemFreeSize] as? NSNumber)?.doubleValue
        else { return nil }
        let needed = plan.checkpointBytes * Double(plan.settings.checkpoint.keep + 1)
        guard free < needed else { return nil }
        return "disk: \(RunPlan.size(free)) free under \(existing.path), checkpoints need \(RunPlan.size(needed))"
    }
}
