import Foundation

/// Reading JSON Lines files (one object per line, blank lines skipped), with errors that name the
/// file and the line.
public enum JSONLines {
    public struct ReadError: Error, CustomStringConvertible, Sendable {
        public let path: String
        public let line: Int?
        public let message: String
        public var description: String {
            line.map { "\(path):\($0): \(message)" } ?? "\(path): \(message)"
        }
    }

    public static func read<T: Decodable>(_ type: T.Type, path: String) throws(ReadError) -> [T] {
        try numbered(T.self, path: path).map(\.value)
    }

    /// Each object with its line number (from 1).
    public static func numbered<T: Decodable>(_ type: T.Type, path: String) throws(ReadError) -> [(
        line: Int, value: T
    )] {
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path))
        } catch {
            throw ReadError(
                path: path, line: nil, message: "cannot be read (\((error as NSError).localizedDescription))")
        }
        let decoder = JSONDecoder()
        decoder.keyDecodingStrategy = .convertFromSnakeCase
        var out: [(line: Int, value: T)] = []
        for (index, line) in String(decoding: data, as: UTF8.self).split(
            separator: "\n", omittingEmptySubsequences: false
        )
        .enumerated() {
            let text = line.trimmingCharacters(in: .whitespacesAndNewlines)
            if text.isEmpty { continue }
            do {
                out.append((index + 1, try decoder.decode(T.self, from: Data(text.utf8))))
            } catch let DecodingError.keyNotFound(key, _) {
                throw ReadError(path: path, line: index + 1, message: "missing \"\(key.stringValue)\"")
            } catch let DecodingError.typeMismatch(_, context) {
                let key = context.codingPath.map(\.stringValue).joined(separator: ".")
                throw ReadError(path: path, line: index + 1, message: "\"\(key)\" has the wrong type")
            } catch {
                throw ReadError(path: path, line: index + 1, message: "is not a JSON object")
            }
        }
        return out
    }
}
