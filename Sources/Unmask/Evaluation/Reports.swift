import Foundation

/// Result files: MTEB-format JSON per task, Markdown tables, and a hand-written SVG bar chart.
public enum EvalReports {
    /// MTEB's result JSON (mteb 1.x layout), with an `unmask` block describing the run.
    public static func mtebJSON(_ result: TaskResult, model: String, settings: [String: String]) throws -> Data {
        var scores: [String: Any] = result.scores
        scores["hf_subset"] = "default"
        scores["languages"] = ["eng-Latn"]
        let object: [String: Any] = [
            "task_name": result.task,
            "dataset_revision": "unmask-data-v\(DataPreparation.formatVersion)",
            "mteb_version": "unmask (MTEB 1.x protocols)",
            "evaluation_time": result.evaluationTime,
            "kg_co2_emissions": NSNull(),
            "scores": ["test": [scores]],
            "unmask": ["model": model, "type": result.type.rawValue, "family": result.family, "main_score": result.mainScoreName,
                       "size": result.size, "texts_embedded": result.textsEmbedded, "texts_from_cache": result.textsFromCache,
                       "settings": settings,
                       "prompts": result.prompts.mapValues { ["name": $0.name ?? NSNull(), "text": $0.text] as [String: Any] }] as [String: Any],
        ]
        return try JSONSerialization.data(withJSONObject: object, options: [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes])
    }

    static func percent(_ value: Double?) -> String {
        guard let value, value.isFinite else { return "–" }
        return String(format: "%.2f", value * 100)
    }

    /// One run: a row per task with its main and secondary scores (×100).
    public static func markdownTable(_ results: [TaskResult]) -> String {
        var out = "| Task | Family | Metric | Score | Other metrics | Size | Time (s) |\n|---|---|---|---:|---|---:|---:|\n"
        for r in results {
            let others: [String]
            switch r.type {
            case .sts: others = ["cosine_pearson"]
            case .retrieval: others = ["mrr_at_10", "recall_at_100"]
            case .clustering: others = ["v_measure_std"]
            case .classification: others = ["f1"]
            }
            let otherText = others.map { "\($0) \(percent(r.scores[$0]))" }.joined(separator: ", ")
            out += "| \(r.task) | \(r.family) | \(r.mainScoreName) | \(percent(r.mainScore)) | \(otherText) | \(r.size) | \(String(format: "%.1f", r.evaluationTime)) |\n"
        }
        let average = Metrics.mean(results.map(\.mainScore).filter(\.isFinite))
        out += "| **Average** | | | **\(percent(average))** | | | \(String(format: "%.1f", results.reduce(0) { $0 + $1.evaluationTime })) |\n"
        return out
    }

    /// Family averages of main scores, in first-seen family order, then the average over tasks.
    public static func familyAverages(_ results: [TaskResult]) -> [(family: String, score: Double)] {
        var order: [String] = [], byFamily: [String: [Double]] = [:]
        for r in results where r.mainScore.isFinite {
            if byFamily[r.family] == nil { order.append(r.family) }
            byFamily[r.family, default: []].append(r.mainScore)
        }
        return order.map { ($0, Metrics.mean(byFamily[$0]!)) }
    }

    /// Several configurations: a column per configuration, a row per task; best in bold.
    public static func comparisonTable(_ runs: [(name: String, results: [TaskResult])]) -> String {
        let tasks = orderedUnique(runs.flatMap { $0.results.map(\.task) })
        var out = "| Task | Metric | " + runs.map(\.name).joined(separator: " | ") + " |\n"
        out += "|---|---|" + String(repeating: "---:|", count: runs.count) + "\n"
        for task in tasks {
            let values = runs.map { run in run.results.first { $0.task == task }?.mainScore }
            let metric = runs.lazy.compactMap { $0.results.first { $0.task == task }?.mainScoreName }.first ?? ""
            out += "| \(task) | \(metric) | " + bolded(values).joined(separator: " | ") + " |\n"
        }
        return out
    }

    /// Family averages and the overall average per configuration.
    public static func familyTable(_ runs: [(name: String, results: [TaskResult])]) -> String {
        let families = orderedUnique(runs.flatMap { $0.results.map(\.family) })
        var out = "| Family | " + runs.map(\.name).joined(separator: " | ") + " |\n"
        out += "|---|" + String(repeating: "---:|", count: runs.count) + "\n"
        for family in families {
            let values = runs.map { run in familyAverages(run.results).first { $0.family == family }?.score }
            out += "| \(family) | " + bolded(values).joined(separator: " | ") + " |\n"
        }
        let averages: [Double?] = runs.map { run in
            let scores = run.results.map(\.mainScore).filter(\.isFinite)
            return scores.isEmpty ? nil : Metrics.mean(scores)
        }
        out += "| **Average (tasks)** | " + bolded(averages).joined(separator: " | ") + " |\n"
        let familyMeans: [Double?] = runs.map { run in
            let f = familyAverages(run.results).map(\.score)
            return f.isEmpty ? nil : Metrics.mean(f)
        }
        out += "| **Average (families)** | " + bolded(familyMeans).joined(separator: " | ") + " |\n"
        return out
    }

    /// Which prompts a run used (so a table can be read without the JSON): one line when every
    /// text got the suite's instruction or none, else a line per task.
    static func promptList(_ results: [TaskResult]) -> String {
        let all = results.flatMap { $0.prompts.values }
        if all.allSatisfy({ $0.text.isEmpty }) { return "Prompts: none.\n\n" }
        if all.allSatisfy({ $0.name == nil }) { return "Prompts: the suite's instructions (retrieval: queries only).\n\n" }
        var md = "Prompts (the model's, by name; else the suite's instruction):\n\n"
        for r in results {
            let parts = TaskPrompts.Role.allCases.compactMap { role in
                r.prompts[role.rawValue].map { p in "\(role.rawValue) " + (p.name.map { "`\($0)` \"\(p.text)\"" } ?? (p.text.isEmpty ? "none" : "suite instruction")) }
            }
            md += "- \(r.task): " + parts.joined(separator: "; ") + "\n"
        }
        return md + "\n"
    }

    static func bolded(_ values: [Double?]) -> [String] {
        let best = values.compactMap { $0 }.filter(\.isFinite).max()
        return values.map { v in
            guard let v else { return "–" }
            return v == best && values.count > 1 ? "**\(percent(v))**" : percent(v)
        }
    }

    static func orderedUnique(_ values: [String]) -> [String] {
        var seen = Set<String>()
        return values.filter { seen.insert($0).inserted }
    }

    static let colors = ["#4c78a8", "#f58518", "#54a24b", "#e45756", "#72b7b2", "#b279a2", "#9d755d", "#eeca3b"]

    static func escape(_ s: String) -> String {
        s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
    }

    /// A grouped bar chart: a group per category, a bar per series (scores ×100, axis from 0, or
    /// from the lowest value when some are negative).
    public static func barChart(title: String, categories: [String], series: [(name: String, values: [Double?])], yLabel: String = "score (×100)") -> String {
        let groupWidth = max(60.0, 18.0 * Double(series.count) + 20)
        let left = 60.0, right = 20.0, top = 50.0, bottom = 130.0
        let legendHeight = 20.0 * Double(series.count)  // one entry a line: names are long
        let width = left + right + groupWidth * Double(max(categories.count, 1))
        let height = 420.0 + legendHeight
        let values = series.flatMap(\.values).compactMap { $0 }.filter(\.isFinite).map { $0 * 100 }
        let low = min(0, (values.min() ?? 0)), high = max(values.max() ?? 1, low + 1)
        let step = niceStep((high - low) / 5)
        let axisLow = (low / step).rounded(.down) * step, axisHigh = (high / step).rounded(.up) * step
        let plotBottom = height - bottom - legendHeight
        func y(_ v: Double) -> Double { top + (axisHigh - v) / (axisHigh - axisLow) * (plotBottom - top) }
        var out = String(format: "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"%.0f\" height=\"%.0f\" viewBox=\"0 0 %.0f %.0f\" font-family=\"Helvetica, Arial, sans-serif\" font-size=\"11\">\n", max(width, 480), height, max(width, 480), height)
        out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        out += String(format: "<text x=\"%.1f\" y=\"24\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">%@</text>\n", max(width, 480) / 2, escape(title))
        var tick = axisLow
        while tick <= axisHigh + step / 2 {
            out += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%@\"/>\n", left, y(tick), width - right, y(tick), tick == 0 ? "#333" : "#e0e0e0")
            out += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%@</text>\n", left - 6, y(tick) + 4, formatTick(tick))
            tick += step
        }
        out += String(format: "<text transform=\"translate(16 %.1f) rotate(-90)\" text-anchor=\"middle\">%@</text>\n", (top + plotBottom) / 2, escape(yLabel))
        let barWidth = (groupWidth - 20) / Double(max(series.count, 1))
        for (c, category) in categories.enumerated() {
            let groupLeft = left + groupWidth * Double(c) + 10
            for (s, serie) in series.enumerated() {
                guard c < serie.values.count, let raw = serie.values[c], raw.isFinite else { continue }
                let v = raw * 100
                let x = groupLeft + barWidth * Double(s)
                let y0 = y(max(v, 0)), y1 = y(min(v, 0))
                out += String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%@\"><title>%@: %@ = %.2f</title></rect>\n",
                              x, y0, max(barWidth - 2, 1), max(y1 - y0, 0.5), colors[s % colors.count], escape(serie.name), escape(category), v)
            }
            let labelX = groupLeft + (groupWidth - 20) / 2
            out += String(format: "<text transform=\"translate(%.1f %.1f) rotate(-35)\" text-anchor=\"end\">%@</text>\n", labelX, plotBottom + 14, escape(category))
        }
        for (s, serie) in series.enumerated() {
            let x = left, yy = height - legendHeight - 4 + Double(s) * 20
            out += String(format: "<rect x=\"%.1f\" y=\"%.1f\" width=\"12\" height=\"12\" fill=\"%@\"/>\n", x, yy, colors[s % colors.count])
            out += String(format: "<text x=\"%.1f\" y=\"%.1f\">%@</text>\n", x + 16, yy + 10, escape(serie.name))
        }
        return out + "</svg>\n"
    }

    static func niceStep(_ raw: Double) -> Double {
        guard raw > 0 else { return 1 }
        let magnitude = pow(10, floor(log10(raw)))
        for m in [1.0, 2, 2.5, 5, 10] where m * magnitude >= raw { return m * magnitude }
        return 10 * magnitude
    }

    static func formatTick(_ v: Double) -> String { v.rounded() == v ? String(Int(v)) : String(format: "%.1f", v) }
}
