import ArgumentParser
import Foundation
import Protocol

/// `rlaif-bench codec`: CPU cost of encoding and decoding a 1 KB control message, no sockets.
struct CodecBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "codec", abstract: "Wire encode/decode cost per message.")

    @Option var count = 200_000

    func run() throws {
        let body = [UInt8](repeating: 7, count: 976)  // a 1 KB control frame
        func message(_ i: Int) -> Wire.Message {
            .assign(
                .init(
                    jobID: UInt64(i), kind: .rollout, step: 1, attempt: 0, leaseMilliseconds: 1000, weightsVersion: 1,
                    body: body))
        }
        var checksum = 0
        var start = ContinuousClock.now
        for i in 0..<count { checksum &+= Wire.encode(message(i)).control.count }
        let encode = (ContinuousClock.now - start).seconds / Double(count) * 1e9
        let control = Wire.encode(message(1)).control
        start = .now
        for _ in 0..<count {
            if case .assign(let a) = try Wire.decode([ZMQFrame(control)]) { checksum &+= a.body.count }
        }
        let decode = (ContinuousClock.now - start).seconds / Double(count) * 1e9
        emit(
            String(
                format: "1 KB assign: encode %.0f ns, decode %.0f ns (frame copy included) [%d]", encode, decode,
                checksum))
    }
}
