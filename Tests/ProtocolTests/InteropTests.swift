import Foundation
import Tensor
import Testing

@testable import Protocol

/// A client in another language, written from docs/PROTOCOL.md alone, registers and reports a
/// result. Needs python3 with pyzmq; skipped (with a message) where they are missing, as in CI.
@Suite(.timeLimit(.minutes(1))) struct InteropTests {
    static var pythonWithPyzmq: Bool {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        p.arguments = ["python3", "-c", "import zmq"]
        p.standardOutput = FileHandle.nullDevice
        p.standardError = FileHandle.nullDevice
        guard (try? p.run()) != nil else { return false }
        p.waitUntilExit()
        return p.terminationStatus == 0
    }

    @Test(.enabled(if: pythonWithPyzmq, "python3 with pyzmq is not installed; the interop test is skipped"))
    func pythonClient_registersAndReportsAResult() async throws {
        let server = try Endpoint.listen(on: "tcp://127.0.0.1:*")
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let client = Process()
        client.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        client.arguments = ["python3", root.appendingPathComponent("tools/protocol_client.py").path, server.address]
        try client.run()
        var reported: Wire.Result?
        for await inbound in server.incoming {
            switch inbound.message {
            case .hello(let h):
                #expect(h.workerName == "python-client" && h.threads == 1 && h.incarnation == 99)
                await server.send(
                    .welcome(
                        .init(
                            workerID: 7, heartbeatIntervalMilliseconds: 250, heartbeatTimeoutMilliseconds: 2000,
                            runName: "interop")), to: inbound.peer)
            case .result(let r):
                reported = r
            default:
                Issue.record("unexpected \(inbound.message.kind)")
            }
            if reported != nil { break }
        }
        client.waitUntilExit()
        server.close()
        #expect(client.terminationStatus == 0)
        #expect(reported?.jobID == 42 && reported?.workerID == 7 && reported?.status == .failed)
        // The body the client wrote from the page: a failed result's replica report.
        var body = BodyDecoder(reported?.body ?? [], field: "result")
        let version = try body.u64("version"), fingerprint = try body.optionalString("fingerprint")
        #expect(version == 3 && fingerprint == "00ff")
        #expect(throws: Never.self) { try body.expectEnd() }
    }
}
