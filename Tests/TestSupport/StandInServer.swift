import Foundation

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// Files the tests share: the stand-in labeler server and labeler script (Python, standard library).
public enum Fixtures {
    public static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .deletingLastPathComponent()
        .appendingPathComponent("Fixtures")
}

public struct ServerError: Error, CustomStringConvertible {
    public let message: String
    public var description: String { message }
}

/// The stand-in server on a free loopback port; stopped when the value is released.
public final class StandInServer: @unchecked Sendable {  // immutable once started
    let process = Process()
    public let port: Int

    /// Starts the server; the blocking wait for its "PORT n" line runs on its own thread so
    /// the tests beside this one keep the cooperative pool.
    public static func start(key: String? = nil) async throws -> StandInServer {
        try await withCheckedThrowingContinuation { continuation in
            Thread.detachNewThread { continuation.resume(with: Result { try StandInServer(key: key) }) }
        }
    }

    private init(key: String?) throws {
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments =
            ["python3", Fixtures.directory.appendingPathComponent("standin_chat_server.py").path]
            + (key.map { ["--key", $0] } ?? [])
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        var line = Data()
        while !line.contains(UInt8(ascii: "\n")) {
            let chunk = out.fileHandleForReading.availableData
            if chunk.isEmpty { break }
            line += chunk
        }
        let text = String(decoding: line, as: UTF8.self)
        guard text.hasPrefix("PORT "), let port = Int(text.dropFirst(5).trimmingCharacters(in: .whitespacesAndNewlines))
        else {
            kill(-process.processIdentifier, SIGKILL)
            throw ServerError(message: "the stand-in server did not start: \(text)")
        }
        self.port = port
    }

    // SIGKILL: a child spawned from a Swift process may inherit a mask that blocks SIGTERM.
    deinit {
        kill(-process.processIdentifier, SIGKILL)  // its group: `env` may run python behind a wrapper
        kill(process.processIdentifier, SIGKILL)
        process.waitUntilExit()
    }

    public var url: URL { URL(string: "http://127.0.0.1:\(port)/v1")! }

    public struct Stats: Decodable, Sendable {
        public let requests: Int
        public let maxInFlight: Int
        public let statuses: [String: Int]
        public let authHeadersSeen: Int
        /// Each request's arrival, in seconds of the server's monotonic clock, in order.
        public let arrivals: [Double]

        /// The most requests that arrived within any `window` seconds.
        public func mostWithin(_ window: Double) -> Int {
            var most = 0, start = 0
            for end in arrivals.indices {
                while arrivals[end] - arrivals[start] >= window { start += 1 }
                most = max(most, end - start + 1)
            }
            return most
        }
    }

    public func stats() async throws -> Stats {
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        let (data, _) = try await URLSession.shared.data(from: URL(string: "http://127.0.0.1:\(port)/stats")!)
        return try decoder.decode(Stats.self, from: data)
    }
}
