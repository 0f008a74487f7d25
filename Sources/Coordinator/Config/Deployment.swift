import Foundation
import Protocol
import RLAIF

/// Where and how the cluster runs, none of the method: the coordinator's sockets and timing and
/// the workers `rlaif launch` starts (cluster.yaml's `coordinator` and `workers` sections). The
/// coordinator keeps it; workers are told only what they need (heartbeat timing, ring peers).
public struct Deployment: SettingsSections, Sendable, Equatable {
    public var coordinator = CoordinatorSection()
    public var workers = Workers()

    public init() {}

    public struct CoordinatorSection: Codable, Sendable, Equatable {
        /// Where the coordinator listens (port 0 picks a free port).
        public var bind = "tcp://127.0.0.1:0"
        /// The address workers are told to connect to ("" = the bound address).
        public var advertise = ""
        public var heartbeatIntervalMs = 250
        /// A worker silent this long is declared dead and its jobs are redone.
        public var heartbeatTimeoutMs = 3000
        /// Longest wait for one all-reduce chunk before the step is redone without the silent peer.
        public var ringTimeoutMs = 4000
        /// A job not reported within this long is handed to another worker.
        public var leaseMs = 120_000
        /// TensorBoard event files in the run directory's `tensorboard/`.
        public var tensorboard = true
        /// `report.html` in the run directory when the run ends.
        public var report = true
        /// Where Prometheus scrapes `/metrics` (`tcp://HOST:PORT`; "" = not served).
        public var metricsBind = ""
        /// How long `/metrics` stays up after the run, so a scraper sees the final values.
        public var metricsLingerMs = 0

        public var heartbeatInterval: Duration { .milliseconds(heartbeatIntervalMs) }
        public var heartbeatTimeout: Duration { .milliseconds(heartbeatTimeoutMs) }
        public var ringTimeout: Duration { .milliseconds(ringTimeoutMs) }
        public var lease: Duration { .milliseconds(leaseMs) }
    }

    public struct Workers: Codable, Sendable, Equatable {
        /// Worker processes `rlaif launch` starts on this host.
        public var local = 2
        /// Each local worker's role, in order (`rlaif worker --role`); workers past the list do both.
        public var localRoles: [Wire.WorkerRole] = []
        /// Engine threads of each worker (0 = cores divided among the local workers).
        public var threads = 0
        /// The address a worker's all-reduce listener binds ("tcp://HOST:0"); peers connect to it.
        public var ringBind = "tcp://127.0.0.1:0"
        /// Remote hosts `rlaif launch` starts workers on over ssh: "host", "user@host" or
        /// "user@host:count" (workers on that host, default 1).
        public var ssh: [String] = []
        /// The command that runs a command on a host: `<ssh_command> <host> <command…>`.
        public var sshCommand = "ssh -o BatchMode=yes"
        /// The rlaif executable on the remote hosts.
        public var remoteRlaif = "rlaif"

        /// One `ssh` entry: where, and how many workers.
        public struct RemoteHost: Sendable, Equatable {
            public var destination: String
            public var count: Int
            public init(destination: String, count: Int) {
                self.destination = destination
                self.count = count
            }
        }

        /// The role of local worker `index`.
        public func localRole(_ index: Int) -> Wire.WorkerRole {
            index < localRoles.count ? localRoles[index] : .both
        }

        /// The `ssh` entries, or the first one that cannot be read.
        public func remoteHosts() -> Result<[RemoteHost], RemoteHostError> {
            var hosts: [RemoteHost] = []
            for entry in ssh {
                var destination = Substring(entry), count = 1
                if let colon = entry.lastIndex(of: ":") {
                    guard let n = Int(entry[entry.index(after: colon)...]), n >= 1 else {
                        return .failure(RemoteHostError(entry: entry))
                    }
                    destination = entry[..<colon]
                    count = n
                }
                let host = destination.split(separator: "@", omittingEmptySubsequences: false).last ?? ""
                guard !host.isEmpty, !destination.contains(where: \.isWhitespace),
                    destination.filter({ $0 == "@" }).count <= 1
                else { return .failure(RemoteHostError(entry: entry)) }
                hosts.append(RemoteHost(destination: String(destination), count: count))
            }
            return .success(hosts)
        }

        public struct RemoteHostError: Error, Sendable {
            public let entry: String
        }
    }

    /// A constraint the values break, as (dotted key, what is wrong); nil when all hold.
    public func violation() -> (key: String, message: String)? {
        let positive = SettingCheck.positive
        return SettingCheck.first([
            sshViolation(),
            workers.local >= 0 ? nil : ("workers.local", "must not be negative"),
            workers.threads >= 0 ? nil : ("workers.threads", "must not be negative"),
            positive("coordinator.heartbeat_interval_ms", coordinator.heartbeatIntervalMs),
            coordinator.heartbeatTimeoutMs > coordinator.heartbeatIntervalMs
                ? nil : ("coordinator.heartbeat_timeout_ms", "must exceed heartbeat_interval_ms"),
            positive("coordinator.ring_timeout_ms", coordinator.ringTimeoutMs),
            positive("coordinator.lease_ms", coordinator.leaseMs),
            coordinator.metricsLingerMs >= 0 ? nil : ("coordinator.metrics_linger_ms", "must not be negative"),
            coordinator.metricsBind.isEmpty || coordinator.metricsBind.hasPrefix("tcp://")
                ? nil : ("coordinator.metrics_bind", "must be tcp://HOST:PORT (or \"\" for none)"),
        ])
    }

    /// Remote workers need readable entries and addresses they can reach.
    func sshViolation() -> (String, String)? {
        guard !workers.ssh.isEmpty else { return nil }
        if case .failure(let e) = workers.remoteHosts() {
            return ("workers.ssh", "has \"\(e.entry)\"; write host, user@host or user@host:count")
        }
        func loopback(_ endpoint: String) -> Bool {
            endpoint.contains("://127.") || endpoint.contains("://localhost") || endpoint.contains("://[::1]")
                || endpoint.hasPrefix("ipc://")
        }
        if coordinator.advertise.isEmpty && loopback(coordinator.bind) {
            return (
                "coordinator.bind",
                "is \(coordinator.bind), which workers on other hosts cannot reach; bind tcp://0.0.0.0:PORT "
                    + "(or this host's address) and set coordinator.advertise to an address they can reach"
            )
        }
        if workers.local > 0 && loopback(workers.ringBind) {
            return (
                "workers.ring_bind",
                "is \(workers.ringBind), which remote workers cannot reach; use tcp://0.0.0.0:0 when local and remote workers share a run"
            )
        }
        return nil
    }
}
