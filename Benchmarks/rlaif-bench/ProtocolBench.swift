import ArgumentParser
import Foundation
import Protocol
import Tensor

/// `rlaif-bench protocol`: rlaif's transport (Endpoint, Wire codec) beside the same patterns in C
/// against libzmq directly (`rlaif-zmq-reference`, a process of its own), interleaved round by
/// round over tcp loopback. Reports the best and the
/// median round of each, since loopback throughput on a shared 2-core machine swings by 2×.
struct ProtocolBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "protocol", abstract: "Transport throughput and latency: rlaif vs raw libzmq (C).")

    @Option(help: "Rounds per pattern.") var rounds = 7
    @Option(help: "16 MB tensor messages per round.") var tensorCount = 150
    @Option(help: "1 KB control messages per round.") var controlCount = 200_000
    @Option(help: "Round trips per round.") var roundTrips = 10_000
    @Option(help: "Run only one side, for profiling: rlaif or c.") var only: String?
    @Option(help: "Patterns to run: tensor, control, latency.") var patterns: [String] = [
        "tensor", "control", "latency",
    ]

    func run() async throws {
        emit("pattern (tcp loopback)           stat      rlaif       C/libzmq    rlaif/C")
        if patterns.contains("tensor") {
            let m = try await measure(
                messages: tensorCount, { try await tensorThroughput(count: tensorCount) },
                { try reference("throughput", 16 << 20, tensorCount, 1) * Double(16 << 20) / 1e9 })
            report("16 MB tensors, zero-copy (GB/s)", m.ours, m.reference, higherIsBetter: true)
            report(
                "  CPU per message (µs)", m.oursCPU.map { $0 / 1000 }, m.referenceCPU.map { $0 / 1000 },
                higherIsBetter: false)
        }
        if patterns.contains("control") {
            let m = try await measure(
                messages: controlCount, { try await controlThroughput(count: controlCount) },
                { try reference("throughput", 1024, controlCount, 0) })
            report("1 KB control messages (msg/s)", m.ours, m.reference, higherIsBetter: true)
            report("  CPU per message (ns)", m.oursCPU, m.referenceCPU, higherIsBetter: false)
        }
        if patterns.contains("latency") {
            let m = try await measure(
                messages: roundTrips, { try await roundTrip(count: roundTrips) },
                { try reference("roundtrip", 24, roundTrips) })
            report("round trip, small message (µs)", m.ours, m.reference, higherIsBetter: false)
        }
    }

    struct Measurements {
        var ours: [Double] = [], reference: [Double] = []
        /// Process CPU time (all threads) per message, ns.
        var oursCPU: [Double] = [], referenceCPU: [Double] = []
    }

    /// Runs the C reference (`rlaif-zmq-reference`, built beside this binary) in its own process
    /// and returns the number it prints.
    func reference(_ arguments: Any...) throws -> Double {
        let me = URL(fileURLWithPath: CommandLine.arguments[0]).resolvingSymlinksInPath()
        let p = Process()
        p.executableURL = me.deletingLastPathComponent().appendingPathComponent("rlaif-zmq-reference")
        p.arguments = arguments.map { "\($0)" }
        let pipe = Pipe()
        p.standardOutput = pipe
        try p.run()
        let out = pipe.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        guard p.terminationStatus == 0,
            let v = Double(String(decoding: out, as: UTF8.self).trimmingCharacters(in: .whitespacesAndNewlines))
        else {
            throw ValidationError(
                "rlaif-zmq-reference failed; build it with `swift build -c release --product rlaif-zmq-reference`")
        }
        return v
    }

    /// Interleaves the two paths round by round, recording each round's metric and CPU cost.
    func measure(
        messages: Int, _ ours: () async throws -> Double, _ reference: () throws -> Double
    ) async throws -> Measurements {
        var m = Measurements()
        for _ in 0..<rounds {
            var t0 = ProcessCPU.seconds()
            m.ours.append(only == "c" ? .nan : try await ours())
            m.oursCPU.append((ProcessCPU.seconds() - t0) / Double(messages) * 1e9)
            t0 = ProcessCPU.children()
            m.reference.append(only == "rlaif" ? .nan : try reference())
            m.referenceCPU.append((ProcessCPU.children() - t0) / Double(messages) * 1e9)
        }
        return m
    }

    func report(_ label: String, _ ours: [Double], _ reference: [Double], higherIsBetter: Bool) {
        func median(_ v: [Double]) -> Double { v.sorted()[v.count / 2] }
        let best: ([Double]) -> Double = higherIsBetter ? { $0.max()! } : { $0.min()! }
        for (stat, f) in [("best", best), ("median", median)] {
            let (o, r) = (f(ours), f(reference))
            let ratio = higherIsBetter ? o / r : r / o
            let l = (stat == "best" ? label : "").padding(toLength: 33, withPad: " ", startingAt: 0)
            emit(
                l + stat.padding(toLength: 7, withPad: " ", startingAt: 0)
                    + String(format: "%12.2f %14.2f %9.1f%%", o, r, 100 * ratio))
        }
    }

    /// A connected pair with the connection established.
    func pair() async throws -> (server: Endpoint, client: Endpoint) {
        let server = try Endpoint.listen(on: "tcp://127.0.0.1:*")
        let client = try Endpoint.connect(to: server.address)
        await client.send(.heartbeat(.init(workerID: 0, sequence: 0)))
        for await _ in server.incoming { break }
        return (server, client)
    }

    /// Seconds from the first send until the receiver holds `count` decoded messages.
    func timeOneWay(count: Int, sendAll: @Sendable (Endpoint) async -> Void) async throws -> Double {
        let (server, client) = try await pair()
        let start = ContinuousClock.now
        let receiver = Task {
            var n = 0
            for await _ in server.incoming {
                n += 1
                if n == count { break }
            }
            return ContinuousClock.now
        }
        await sendAll(client)
        let end = await receiver.value
        client.close()
        server.close()
        return (end - start).seconds
    }

    func tensorThroughput(count: Int) async throws -> Double {
        var rng = RandomStream(seed: 1, purpose: .scratch)
        let tensor = Tensor.randomUniform([4 << 20], rng: &rng)  // 16 MB
        let chunk = Wire.Message.gradientChunk(
            .init(step: 0, ringEpoch: 0, phase: .allGather, chunkIndex: 0, fromRank: 0, payload: .values(tensor)))
        let seconds = try await timeOneWay(count: count) { client in
            for _ in 0..<count { await client.send(chunk) }
        }
        return Double(count) * Double(16 << 20) / seconds / 1e9
    }

    func controlThroughput(count: Int) async throws -> Double {
        // An assignment with a 976-byte body: a 1 KB control frame, encoded per message as in real use.
        let body = [UInt8](repeating: 7, count: 976)
        let seconds = try await timeOneWay(count: count) { client in
            for i in 0..<count {
                await client.send(
                    .assign(
                        .init(
                            jobID: UInt64(i), kind: .rollout, step: 1, attempt: 0, leaseMilliseconds: 1000,
                            weightsVersion: 1, body: body)))
            }
        }
        return Double(count) / seconds
    }

    /// Mean microseconds for a heartbeat to go out and be echoed back.
    func roundTrip(count: Int) async throws -> Double {
        let (server, client) = try await pair()
        let echo = Task {
            for await inbound in server.incoming { await server.send(inbound.message, to: inbound.peer) }
        }
        var replies = client.incoming.makeAsyncIterator()
        var start = ContinuousClock.now
        for i in -100..<count {
            if i == 0 { start = .now }
            await client.send(.heartbeat(.init(workerID: 1, sequence: UInt64(max(i, 0)))))
            _ = await replies.next()
        }
        let elapsed = ContinuousClock.now - start
        client.close()
        server.close()
        _ = await echo.value
        return elapsed.seconds / Double(count) * 1e6
    }
}

extension Duration {
    var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}

/// CPU time (user + system), all threads: of this process, or of its finished children.
enum ProcessCPU {
    static func seconds() -> Double { usage(RUSAGE_SELF) }
    static func children() -> Double { usage(RUSAGE_CHILDREN) }

    private static func usage(_ who: __rusage_who) -> Double {
        var usage = rusage()
        getrusage(who.rawValue, &usage)
        func s(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) * 1e-6 }
        return s(usage.ru_utime) + s(usage.ru_stime)
    }
}
