// OpenRouter Watcher: the little behaviour pages need beyond htmx. No inline script anywhere (CSP).
"use strict";

// Okabe-Ito: distinguishable with the common colour-vision deficiencies; grey is "other".
const PALETTE = ["#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442", "#000000"];
const OTHER = "#999999";

function drawCharts(root) {
  if (typeof window.Chart === "undefined") return;
  root.querySelectorAll("canvas[data-chart]").forEach((canvas) => {
    if (canvas.dataset.drawn) return;
    const data = JSON.parse(canvas.dataset.chart);
    const dark = window.matchMedia("(prefers-color-scheme: dark)").matches;
    const ink = dark ? "#ddd" : "#333";
    const datasets = data.series.map((s, i) => ({
      label: s.label,
      data: s.data.map(Number),
      backgroundColor: s.label === "other" ? OTHER : PALETTE[i % PALETTE.length],
      borderWidth: 0,
    }));
    new window.Chart(canvas, {
      type: "bar",
      data: { labels: data.labels, datasets },
      options: {
        animation: false,
        maintainAspectRatio: false,
        scales: {
          x: { stacked: true, ticks: { color: ink, maxRotation: 0, autoSkip: true } },
          y: { stacked: true, ticks: { color: ink, callback: (v) => "$" + v } },
        },
        plugins: {
          legend: { labels: { color: ink } },
          tooltip: { callbacks: { label: (c) => c.dataset.label + ": $" + data.series[c.datasetIndex].data[c.dataIndex] } },
        },
      },
    });
    canvas.dataset.drawn = "1";
  });
}

function wireCopy(root) {
  root.querySelectorAll("button[data-copy]").forEach((button) => {
    button.addEventListener("click", async () => {
      const input = document.getElementById(button.dataset.copy);
      const said = document.querySelector(`[data-copied-for="${button.dataset.copy}"]`);
      try {
        await navigator.clipboard.writeText(input.value);
      } catch (e) {
        input.select();
        document.execCommand("copy");
      }
      if (said) said.textContent = "Copied.";
    });
  });
}

function wireStrength(root) {
  root.querySelectorAll("input[data-strength]").forEach((input) => {
    const out = document.querySelector(`[data-strength-for="${input.id}"]`);
    if (!out) return;
    input.addEventListener("input", () => {
      const n = [...input.value].length;
      out.textContent = n === 0 ? "" : n < 12 ? `${n} characters: too short.` : n < 16 ? `${n} characters: fine.` : `${n} characters: strong.`;
    });
  });
}

// A form's parts that apply to one choice only (a budget's key or account picker, a channel's URL or address):
// the others are hidden while that choice is not made. Without script every part shows, labelled.
function wireChoice(root, selectSelector, partAttribute) {
  root.querySelectorAll(selectSelector).forEach((select) => {
    const parts = select.form.querySelectorAll(`[${partAttribute}]`);
    const show = () => parts.forEach((part) => {
      part.hidden = !part.getAttribute(partAttribute).split(" ").includes(select.value);
    });
    select.addEventListener("change", show);
    show();
  });
}

function init(root) {
  drawCharts(root);
  wireCopy(root);
  wireStrength(root);
  wireChoice(root, "select[data-scope-select]", "data-scope-for");
  wireChoice(root, "select[data-channel-type]", "data-type-for");
}

document.addEventListener("DOMContentLoaded", () => init(document));
document.addEventListener("htmx:afterSettle", (event) => init(event.target));
