// The dashboard's charts: each <figure data-chart-key> holds its data (metrics/charts.py,
// passed through json_script); this file only maps that data to a Chart.js config. No
// numbers are computed here. Idempotent: safe to run again on swapped content.
(function () {
  "use strict";

  // Okabe-Ito's colour-blind-safe colours first, then Paul Tol's muted ones, ordered so
  // that neighbouring bands of a stacked chart never share a hue family.
  const PALETTE = [
    "#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00",
    "#332288", "#DDCC77", "#44AA99", "#882255", "#999933", "#88CCEE",
  ];
  const BASE = "#0072B2"; // blue: a plain bar or dot
  const DONE = "#8a94a6"; // grey: the cumulative flow's done band
  const MARKED = "#D55E00"; // vermillion: a marked bar (a signal, the 80% set)
  const PARETO_LINE = "#009E73"; // bluish green: the running share, apart from the 80% line
  const LINE_COLOURS = ["#1d2433", "#D55E00", "#882255"]; // reference lines, in order
  const LABEL_POSITIONS = ["end", "start", "center"]; // close lines' labels sit apart

  // What each chart's axes count: the chart data does not say.
  const AXES = {
    "cumulative-flow": { y: "cards" },
    "cycle-time": { y: "days" },
    throughput: { y: "deals won", weeks: true },
    funnel: { y: "cards" },
    pareto: { y: "won value", y1: "share of won value" },
    aging: { y: "days in column" },
    demand: { y: "cards per week", weeks: true },
    "littles-law": { y: "cards" },
    experiment: { weeks: true },
    "conversion-weekly": { y: "% moved on", weeks: true },
    "lost-reasons": { y: "lost deals" },
    "lost-reasons-channels": { y: "lost deals" },
  };
  const BAND = "#CC79A7"; // reddish purple: an experiment's window

  const charts = (window.vsmCharts = window.vsmCharts || {});

  function reducedMotion() {
    return window.matchMedia && window.matchMedia("(prefers-reduced-motion: reduce)").matches;
  }

  function cssVar(name, fallback) {
    const value = getComputedStyle(document.documentElement).getPropertyValue(name).trim();
    return value || fallback;
  }

  function colour(index) {
    return PALETTE[index % PALETTE.length];
  }

  function translucent(hex, alpha) {
    const n = parseInt(hex.slice(1), 16);
    return "rgba(" + ((n >> 16) & 255) + "," + ((n >> 8) & 255) + "," + (n & 255) + "," + alpha + ")";
  }

  const numberFormat = new Intl.NumberFormat(undefined, { maximumFractionDigits: 2 });
  const shareFormat = new Intl.NumberFormat(undefined, { style: "percent", maximumFractionDigits: 1 });

  // "2026-09-07" (an ISO day from the server) as "7 Sep", or "7 Sep 2026" with the year.
  function formatDay(iso, withYear) {
    const parts = String(iso).split("-");
    if (parts.length !== 3) {
      return String(iso);
    }
    const day = new Date(Number(parts[0]), Number(parts[1]) - 1, Number(parts[2]));
    return day.toLocaleDateString(undefined, withYear ? { day: "numeric", month: "short", year: "numeric" } : { day: "numeric", month: "short" });
  }

  function formatNumber(value) {
    return value === null || value === undefined ? "–" : numberFormat.format(value);
  }

  function kind(key) {
    return key.indexOf("funnel-") === 0 ? "funnel" : key;
  }

  function marksOf(data) {
    const marks = new Map();
    (data.marks || []).forEach(function (mark) {
      marks.set(mark[0], mark[1]);
    });
    return marks;
  }

  function axisTitle(text) {
    return { display: Boolean(text), text: text || "", font: { size: 11 } };
  }

  // Horizontal reference lines (percentiles, process limits, the 80% line), each named
  // with its value in the legend. format null: the label alone, when it names its value
  // already ("80% of won value").
  function addReferenceLines(options, legend, data, scaleID, format) {
    const annotations = options.plugins.annotation.annotations;
    (data.lines || []).forEach(function (line, index) {
      const tone = LINE_COLOURS[index % LINE_COLOURS.length];
      const dash = index === 0 ? [] : [6, 4];
      const text = format === null ? line.label : line.label + " " + (format || formatNumber)(line.value);
      annotations["line" + index] = {
        type: "line",
        scaleID: scaleID || "y",
        value: line.value,
        borderColor: tone,
        borderWidth: 1.5,
        borderDash: dash,
        // The legend names every line; the label on the line shows while it is hovered
        // (always shown, labels hide bars and dots and collide when lines lie close).
        hitTolerance: 6,
        enter: function (context) {
          context.element.label.options.display = true;
          return true;
        },
        leave: function (context) {
          context.element.label.options.display = false;
          return true;
        },
        label: {
          display: false,
          content: text,
          position: LABEL_POSITIONS[index % LABEL_POSITIONS.length],
          backgroundColor: "rgba(255,255,255,0.75)",
          color: tone,
          font: { size: 10, weight: "600" },
          padding: 2,
        },
      };
      legend.push({ text: text, colour: tone, line: true, dash: dash });
    });
  }

  // Spans of the x axis (an experiment's window), each a shaded box named in the legend.
  // On a category axis (weeks) the box covers the named labels whole; on a time axis it
  // runs from day to day.
  function addBands(options, legend, data, onTimeAxis) {
    const annotations = options.plugins.annotation.annotations;
    (data.bands || []).forEach(function (band, index) {
      const from = onTimeAxis ? band.start : data.labels.indexOf(band.start) - 0.5;
      const to = onTimeAxis ? band.end : data.labels.indexOf(band.end) + 0.5;
      annotations["band" + index] = {
        type: "box",
        xMin: from,
        xMax: to,
        backgroundColor: translucent(BAND, 0.12),
        borderColor: translucent(BAND, 0.6),
        borderWidth: 1,
        drawTime: "beforeDatasetsDraw",
        label: {
          display: true,
          content: band.label,
          position: { x: "start", y: "start" },
          color: BAND,
          font: { size: 10, weight: "600" },
          padding: 2,
        },
      };
      if (legend.every(function (item) { return item.text !== band.label; })) {
        legend.push({ text: band.label, colour: translucent(BAND, 0.35) });
      }
    });
  }

  function pointStyleOf(chart, dataset) {
    const type = dataset.type || chart.config.type;
    if (type === "bar" || dataset.fill) {
      return "rect";
    }
    return type === "line" ? "line" : "circle";
  }

  // The legend: the datasets, then what is not a dataset (reference lines, marked bars,
  // the aging percentile ticks), each drawn in its own style.
  function generateLegend(extras) {
    return function (chart) {
      const items = Chart.defaults.plugins.legend.labels.generateLabels(chart);
      items.forEach(function (item) {
        const dataset = chart.data.datasets[item.datasetIndex];
        item.pointStyle = pointStyleOf(chart, dataset);
        if (dataset.vsmLegendColour) {
          item.fillStyle = item.strokeStyle = dataset.vsmLegendColour;
        }
        if (item.pointStyle === "line") {
          item.lineWidth = 2;
        }
      });
      return items.concat(
        extras.map(function (extra) {
          return {
            text: extra.text,
            fillStyle: extra.colour,
            strokeStyle: extra.colour,
            fontColor: Chart.defaults.color,
            lineWidth: extra.line ? 2 : 0,
            lineDash: extra.dash || [],
            pointStyle: extra.line ? "line" : "rect",
            hidden: false,
            datasetIndex: null,
          };
        }),
      );
    };
  }

  function withLegend(options, extras) {
    if (extras.length) {
      options.plugins.legend.display = true;
    }
    Object.assign(options.plugins.legend.labels, {
      usePointStyle: true,
      boxHeight: 8,
      generateLabels: generateLegend(extras),
    });
    return options;
  }

  function baseOptions(data, axes) {
    return {
      responsive: true,
      maintainAspectRatio: false,
      animation: false,
      interaction: { mode: "index", intersect: false },
      layout: { padding: { top: 4, right: 4 } },
      scales: {
        x: { ticks: { autoSkip: true, maxRotation: 50, font: { size: 11 } }, grid: { display: false } },
        y: { beginAtZero: true, title: axisTitle(axes.y), ticks: { font: { size: 11 } } },
      },
      plugins: {
        legend: {
          position: "bottom",
          display: data.series.length > 1,
          labels: { boxWidth: 12, boxHeight: 12, padding: 8, font: { size: 11 } },
          onClick: function (event, item, legend) {
            // Extra entries (lines, marks, percentile ticks) belong to no dataset.
            if (item.datasetIndex !== null && item.datasetIndex !== undefined) {
              Chart.defaults.plugins.legend.onClick.call(this, event, item, legend);
            }
          },
        },
        tooltip: { callbacks: {} },
        annotation: { annotations: {} },
      },
    };
  }

  // Bars and lines over the same categories (weeks, steps, columns, channels).
  // lineScale, lineFormat: where the reference lines sit and how their values read.
  function barConfig(data, axes, lineScale, lineFormat) {
    const marks = marksOf(data);
    const options = baseOptions(data, axes);
    const legend = [];
    const datasets = data.series.map(function (series, index) {
      const tone = data.series.length === 1 ? BASE : colour(index);
      if (series.kind === "line") {
        return {
          type: "line",
          label: series.name,
          data: series.values,
          borderColor: tone,
          backgroundColor: tone,
          borderWidth: 2,
          pointRadius: 2.5,
          tension: 0,
          order: 0, // drawn over the bars
        };
      }
      const dataset = {
        type: "bar",
        label: series.name,
        data: series.values,
        backgroundColor: tone,
        borderColor: tone,
        borderWidth: 0,
        order: 1,
      };
      if (index === 0 && marks.size) {
        dataset.backgroundColor = series.values.map(function (value, at) {
          return marks.has(at) ? MARKED : tone;
        });
        dataset.vsmLegendColour = tone;
      }
      return dataset;
    });
    if (marks.size) {
      options.plugins.tooltip.callbacks.afterBody = function (items) {
        const meaning = items.length ? marks.get(items[0].dataIndex) : undefined;
        return meaning ? "Marked: " + meaning : "";
      };
    }
    if (axes.weeks) {
      // Week labels are ISO Mondays: short on the axis, in full in the tooltip.
      options.scales.x.ticks.callback = function (value) {
        return formatDay(this.getLabelForValue(value), false);
      };
      options.plugins.tooltip.callbacks.title = function (items) {
        return items.length ? "Week of " + formatDay(items[0].label, true) : "";
      };
    }
    addReferenceLines(options, legend, data, lineScale, lineFormat);
    addBands(options, legend, data, false);
    if (marks.size) {
      legend.push({ text: "marked: " + Array.from(new Set(marks.values())).join("; "), colour: MARKED });
    }
    return { type: "bar", data: { labels: data.labels, datasets: datasets }, options: withLegend(options, legend) };
  }

  function paretoConfig(data, axes) {
    const config = barConfig(data, axes, "y1", null);
    config.data.datasets.forEach(function (dataset) {
      if (dataset.type === "line") {
        dataset.yAxisID = "y1";
        dataset.borderColor = dataset.backgroundColor = PARETO_LINE;
        dataset.clip = 6; // the last point sits on 100%, the top edge
      }
    });
    const percent = function (value) {
      return shareFormat.format(value);
    };
    config.options.scales.y1 = {
      position: "right",
      min: 0,
      max: 1,
      grid: { drawOnChartArea: false },
      title: axisTitle(axes.y1),
      ticks: { callback: percent, font: { size: 11 } },
    };
    config.options.plugins.tooltip.callbacks.label = function (item) {
      const value = item.dataset.yAxisID === "y1" ? percent(item.raw) : formatNumber(item.raw);
      return item.dataset.label + ": " + value;
    };
    return config;
  }

  function littlesLawConfig(data, axes) {
    const config = barConfig(data, axes);
    // Long "cycle / column" names read better down the side than slanted under bars.
    config.options.indexAxis = "y";
    config.options.scales = {
      x: { beginAtZero: true, title: axisTitle(axes.y), ticks: { font: { size: 11 } } },
      y: { ticks: { autoSkip: false, font: { size: 10 } }, grid: { display: false } },
    };
    return config;
  }

  // Days on a time axis, ticks short enough for a phone ("7 Sep"), the year in the tooltip.
  function timeAxis(offset) {
    return {
      type: "time",
      offset: offset,
      time: {
        minUnit: "day",
        tooltipFormat: "d MMM yyyy",
        displayFormats: { day: "d MMM", week: "d MMM", month: "MMM yyyy", quarter: "MMM yyyy" },
      },
      ticks: { maxRotation: 0, autoSkip: true, autoSkipPadding: 12, font: { size: 11 } },
      grid: { display: false },
    };
  }

  function cumulativeFlowConfig(data, axes) {
    const options = baseOptions(data, axes);
    options.scales.x = timeAxis(false);
    options.scales.y.stacked = true;
    options.elements = { point: { radius: 0, hitRadius: 4 }, line: { borderWidth: 1, tension: 0 } };
    // The server lists the bands bottom first; the legend reads top band first, like the chart.
    options.plugins.legend.reverse = true;
    options.plugins.tooltip.itemSort = function (a, b) {
      return b.datasetIndex - a.datasetIndex;
    };
    // The bottom band is the cards done (the server lists it first): neutral grey, so
    // the palette's colours stay with the columns.
    const datasets = data.series.map(function (series, index) {
      const tone = index === 0 ? DONE : colour(index - 1);
      return {
        label: series.name,
        data: series.values,
        borderColor: tone,
        backgroundColor: translucent(tone, 0.75),
        fill: index === 0 ? "origin" : "-1",
      };
    });
    const legend = [];
    addBands(options, legend, data, true);
    return { type: "line", data: { labels: data.labels, datasets: datasets }, options: withLegend(options, legend) };
  }

  // A dot's card: its name and link (the server sends the cards of a dot chart as
  // "dots": ids, names and the link prefix).
  function cardOf(data, index) {
    if (data.dots) {
      const id = data.dots.ids[index];
      return { name: data.dots.names[index] || "", url: id === undefined ? null : data.dots.link_prefix + id + "/" };
    }
    const row = data.rows[index] || [];
    const link = data.columns.indexOf("link");
    return { name: row[0] || "", url: link >= 0 ? row[link] : null };
  }

  function dotOptions(options, data) {
    options.interaction = { mode: "nearest", intersect: true };
    options.onHover = function (event, elements, chart) {
      const over = elements.some(function (element) {
        return element.datasetIndex === 0 && cardOf(data, element.index).url;
      });
      chart.canvas.style.cursor = over ? "pointer" : "";
    };
    options.onClick = function (event, elements) {
      const dot = elements.find(function (element) {
        return element.datasetIndex === 0;
      });
      const url = dot ? cardOf(data, dot.index).url : null;
      if (url) {
        window.location.assign(url);
      }
    };
    options.plugins.tooltip.callbacks.title = function (items) {
      return items.length ? String(cardOf(data, items[0].dataIndex).name) : "";
    };
    return options;
  }

  function cycleTimeConfig(data, axes) {
    const options = dotOptions(baseOptions(data, axes), data);
    options.scales.x = timeAxis(true); // offset: a dot on the first or last day stays whole
    options.plugins.tooltip.callbacks.label = function (item) {
      return "finished " + data.labels[item.dataIndex] + ": " + formatNumber(item.raw.y) + " days";
    };
    const legend = [];
    addReferenceLines(options, legend, data);
    addBands(options, legend, data, true);
    withLegend(options, legend);
    // The dots need no legend entry: the caption says what they are.
    options.plugins.legend.labels.filter = function (item) {
      return item.datasetIndex === null;
    };
    const points = data.series.length
      ? data.series[0].values.map(function (value, index) {
          return { x: data.labels[index], y: value };
        })
      : [];
    const dataset = {
      label: data.series.length ? data.series[0].name : "",
      data: points,
      backgroundColor: translucent(BASE, 0.7),
      borderColor: BASE,
      pointRadius: 4,
      pointHoverRadius: 6,
      pointHitRadius: 4,
    };
    return { type: "scatter", data: { datasets: [dataset] }, options: options };
  }

  function agingConfig(data, axes) {
    const options = dotOptions(baseOptions(data, axes), data);
    const labels = data.labels;
    const ages = data.series[0] ? data.series[0].values : [];
    const positions = data.series[1] ? data.series[1].values : [];
    // Columns sit at 0..n-1 on a linear axis, so a percentile tick can span its column.
    options.scales.x = {
      type: "linear",
      min: -0.5,
      max: Math.max(labels.length, 1) - 0.5,
      grid: { display: false },
      afterBuildTicks: function (scale) {
        scale.ticks = labels.map(function (label, index) {
          return { value: index };
        });
      },
      ticks: {
        autoSkip: false,
        maxRotation: 60,
        font: { size: 10 },
        callback: function (value) {
          return labels[value] === undefined ? "" : labels[value];
        },
      },
    };
    const p85 = data.series[3] ? data.series[3].values : [];
    options.plugins.tooltip.callbacks.label = function (item) {
      const column = positions[item.dataIndex];
      return [
        labels[column] + ": " + formatNumber(ages[item.dataIndex]) + " days",
        "column's 85th percentile: " + formatNumber(p85[column]) + " days",
      ];
    };
    const annotations = {};
    const ticks = [
      { series: data.series[2], colour: "#1d2433", dash: [4, 3] },
      { series: data.series[3], colour: MARKED, dash: [] },
    ];
    ticks.forEach(function (tick, which) {
      if (!tick.series) {
        return;
      }
      tick.series.values.forEach(function (value, column) {
        if (value === null || value === undefined) {
          return;
        }
        annotations["p" + which + "-" + column] = {
          type: "line",
          xMin: column - 0.4,
          xMax: column + 0.4,
          yMin: value,
          yMax: value,
          borderColor: tick.colour,
          borderWidth: 2,
          borderDash: tick.dash,
          drawTime: "beforeDatasetsDraw",
        };
      });
    });
    options.plugins.annotation.annotations = annotations;
    const extras = ticks
      .filter(function (tick) {
        return tick.series;
      })
      .map(function (tick) {
        return { text: tick.series.name, colour: tick.colour, line: true, dash: tick.dash };
      });
    const dataset = {
      label: data.series[0] ? data.series[0].name : "",
      data: ages.map(function (value, index) {
        return { x: positions[index], y: value };
      }),
      backgroundColor: translucent(BASE, 0.7),
      borderColor: BASE,
      pointRadius: 4,
      pointHoverRadius: 6,
      pointHitRadius: 4,
    };
    withLegend(options, extras);
    return { type: "scatter", data: { datasets: [dataset] }, options: options };
  }

  // One line per targeted step, in % (0 to 100), with its experiments' windows and targets.
  function conversionWeeklyConfig(data, axes) {
    const percent = function (value) {
      return formatNumber(value) + "%";
    };
    const config = barConfig(data, axes, "y", percent);
    config.options.scales.y.max = 100;
    config.data.datasets.forEach(function (dataset) {
      dataset.clip = 6; // a week at 100% sits on the top edge
    });
    config.options.plugins.tooltip.callbacks.label = function (item) {
      return item.dataset.label + ": " + (item.raw === null ? "nothing to measure" : percent(item.raw));
    };
    return config;
  }

  // Lost deals per column or channel, stacked by reason: long names read down the side.
  function stackedBarConfig(data, axes) {
    const config = barConfig(data, axes);
    config.options.indexAxis = "y";
    config.options.interaction = { mode: "index", axis: "y", intersect: false };
    config.options.scales = {
      x: { stacked: true, beginAtZero: true, title: axisTitle(axes.y), ticks: { precision: 0, font: { size: 11 } } },
      y: { stacked: true, ticks: { autoSkip: false, font: { size: 10 } }, grid: { display: false } },
    };
    return config;
  }

  const BUILDERS = {
    "cumulative-flow": cumulativeFlowConfig,
    "cycle-time": cycleTimeConfig,
    throughput: barConfig,
    funnel: barConfig,
    pareto: paretoConfig,
    aging: agingConfig,
    demand: barConfig,
    "littles-law": littlesLawConfig,
    experiment: barConfig,
    "conversion-weekly": conversionWeeklyConfig,
    "lost-reasons": stackedBarConfig,
    "lost-reasons-channels": stackedBarConfig,
  };

  function render(figure) {
    const key = figure.dataset.chartKey;
    const canvas = figure.querySelector("canvas");
    const source = document.getElementById("chart-data-" + key);
    if (!canvas || !source) {
      return;
    }
    const existing = Chart.getChart(canvas);
    if (existing) {
      charts[key] = existing;
      return;
    }
    const data = JSON.parse(source.textContent);
    const build = BUILDERS[kind(key)] || barConfig;
    charts[key] = new Chart(canvas, build(data, AXES[kind(key)] || {}));
  }

  function forgetDetached() {
    Object.keys(charts).forEach(function (key) {
      if (!charts[key].canvas || !charts[key].canvas.isConnected) {
        charts[key].destroy();
        delete charts[key];
      }
    });
  }

  function renderAll() {
    if (typeof Chart === "undefined") {
      return;
    }
    Chart.defaults.font.family = getComputedStyle(document.body).fontFamily;
    Chart.defaults.color = cssVar("--muted", "#5b6474");
    Chart.defaults.borderColor = cssVar("--line", "#d9dee7");
    if (reducedMotion()) {
      Chart.defaults.animation = false;
      Chart.defaults.transitions.active.animation.duration = 0;
    }
    forgetDetached();
    document.querySelectorAll("figure[data-chart-key]").forEach(function (figure) {
      try {
        render(figure);
      } catch (error) {
        // One broken chart must not keep the others (or the ready flag) from the page.
        figure.classList.add("chart-failed");
        if (window.console) {
          console.error("chart " + figure.dataset.chartKey + ":", error);
        }
      }
    });
    document.documentElement.dataset.chartsReady = "true";
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", renderAll);
  } else {
    renderAll();
  }
  if (window.htmx) {
    htmx.onLoad(renderAll);
  }
})();
