import Foundation
import Testing

@testable import Coordinator

@Suite struct ClusterConfigTests {
    // MARK: Valid files

    @Test func repositoryClusterYaml_spellsOutTheEmbeddedDefaults() throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent()
        let config = try ClusterConfig.load(path: root.appendingPathComponent("cluster.yaml").path)
        #expect(config == ClusterConfig.defaults)
    }

    @Test func emptyDocument_givesDefaults_andKeysOverrideThem() throws {
        #expect(try ClusterConfig.parse(yaml: "") == .defaults)
        let c = try ClusterConfig.parse(yaml: "run:\n  name: exp-7\n  seed: 99\n")
        #expect(c.run.name == "exp-7" && c.run.seed == 99)
    }

    // MARK: Errors name the key and the line

    @Test func badSeed_namesKeyAndLine() {
        #expect(
            throws: ConfigError(
                file: "cluster.yaml", line: 3, key: "run.seed", message: "must be a non-negative integer, got \"-4\"")
        ) {
            try ClusterConfig.parse(yaml: "run:\n  name: a\n  seed: -4\n")
        }
    }

    @Test func unknownKey_isRejectedWithItsLine() throws {
        do {
            _ = try ClusterConfig.parse(yaml: "run:\n  nmae: typo\n")
            Issue.record("a misspelt key was accepted")
        } catch {
            #expect(error.key == "run.nmae" && error.line == 2)
            #expect(error.description.contains("cluster.yaml:2: run.nmae is not a known key"))
        }
    }

    @Test func unsafeRunName_isRejected() {
        #expect(throws: ConfigError.self) { try ClusterConfig.parse(yaml: "run:\n  name: ../etc\n") }
        #expect(throws: ConfigError.self) { try ClusterConfig.parse(yaml: "run:\n  name: \"\"\n") }
    }

    @Test func malformedYaml_reportsALine() {
        do {
            _ = try ClusterConfig.parse(yaml: "run:\n  name: [unclosed\n")
            Issue.record("malformed YAML was accepted")
        } catch {
            #expect(error.line != nil)
            #expect(error.message.hasPrefix("is not valid YAML"))
        }
    }

    @Test func wrongShape_saysWhatWasExpected() {
        do {
            _ = try ClusterConfig.parse(yaml: "run: 5\n")
            Issue.record("a scalar run section was accepted")
        } catch {
            #expect(error.key == "run" && error.line == 1)
            #expect(error.message.contains("must be a mapping"))
        }
    }

    @Test func missingFile_isAClearError() {
        #expect(throws: ConfigError.self) { try ClusterConfig.load(path: "/nonexistent/cluster.yaml") }
    }
}
