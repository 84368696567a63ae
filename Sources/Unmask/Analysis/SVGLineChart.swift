import Foundation

/// A small self-contained SVG line chart (no external assets), for analysis reports.
public struct SVGLineChart {
    public var title: String
    public var xLabel: String
    public var yLabel: String
    public var xValues: [Double]
    public var series: [(String, [Double])]

    static let colors = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b"]

    public var svg: String {
        let width = 720.0, height = 420.0, left = 70.0, right = 170.0, top = 40.0, bottom = 50.0
        let all = series.flatMap(\.1).filter(\.isFinite)
        var low = all.min() ?? 0, high = all.max() ?? 1
        if high - low < 1e-9 { low -= 0.5; high += 0.5 }
        let pad = (high - low) * 0.05
        low -= pad; high += pad
        let xLow = xValues.min() ?? 0, xHigh = max(xValues.max() ?? 1, xLow + 1)
        func x(_ v: Double) -> Double { left + (v - xLow) / (xHigh - xLow) * (width - left - right) }
        func y(_ v: Double) -> Double { top + (high - v) / (high - low) * (height - top - bottom) }
        func escape(_ s: String) -> String {
            s.replacingOccurrences(of: "&", with: "&amp;").replacingOccurrences(of: "<", with: "&lt;").replacingOccurrences(of: ">", with: "&gt;")
        }
        var out = "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"\(Int(width))\" height=\"\(Int(height))\" font-family=\"sans-serif\" font-size=\"12\">\n"
        out += "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
        out += "<text x=\"\(width / 2)\" y=\"22\" text-anchor=\"middle\" font-size=\"14\">\(escape(title))</text>\n"
        for i in 0...5 {
            let v = low + (high - low) * Double(i) / 5
            out += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"#ddd\"/>\n", left, y(v), width - right, y(v))
            out += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\">%.3f</text>\n", left - 6, y(v) + 4, v)
        }
        let step = max(1, xValues.count / 10)
        for (i, v) in xValues.enumerated() where i % step == 0 || i == xValues.count - 1 {
            out += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\">%@</text>\n", x(v), height - bottom + 18, v.rounded() == v ? String(Int(v)) : String(v))
        }
        out += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n", left, height - bottom, width - right, height - bottom)
        out += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"black\"/>\n", left, top, left, height - bottom)
        out += "<text x=\"\((left + width - right) / 2)\" y=\"\(height - 12)\" text-anchor=\"middle\">\(escape(xLabel))</text>\n"
        out += "<text transform=\"translate(16,\((top + height - bottom) / 2)) rotate(-90)\" text-anchor=\"middle\">\(escape(yLabel))</text>\n"
        for (index, (name, values)) in series.enumerated() {
            let color = Self.colors[index % Self.colors.count]
            let points = zip(xValues, values).filter { $0.1.isFinite }.map { String(format: "%.1f,%.1f", x($0.0), y($0.1)) }.joined(separator: " ")
            out += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(points)\"/>\n"
            let legendY = top + 20 * Double(index)
            out += String(format: "<line x1=\"%.1f\" y1=\"%.1f\" x2=\"%.1f\" y2=\"%.1f\" stroke=\"%@\" stroke-width=\"3\"/>\n", width - right + 12, legendY, width - right + 32, legendY, color)
            out += String(format: "<text x=\"%.1f\" y=\"%.1f\">%@</text>\n", width - right + 38, legendY + 4, escape(name))
        }
        return out + "</svg>\n"
    }
}
