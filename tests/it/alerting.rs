//! SPEC §14, alerting and dashboards: the Prometheus rules in
//! `contrib/prometheus/` pass `promtool check rules` and their own unit
//! tests (`promtool test rules`), every alert is tested firing and not
//! firing, the Grafana dashboard in `contrib/grafana/` is well formed and
//! its queries are valid PromQL, and every metric the rules and the
//! dashboard name is in a live scrape of the real server.

use std::collections::BTreeSet;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::{Duration, Instant};

use nix::sys::signal::Signal;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::admin::{get, start_with_admin};
use crate::common::PATIENCE;

const RULES: &str = "contrib/prometheus/nea.rules.yml";
const RULE_TESTS: &str = "contrib/prometheus/nea.rules.test.yml";
const DASHBOARD: &str = "contrib/grafana/nea.json";

/// Metrics the rules and the dashboard use that the server does not export
/// yet: they land with the session-end reasons, the build information and
/// the standard process metrics. The live-scrape test skips them (and says
/// so), and fails once one of them is exported: this list must then lose
/// that name, and be empty once they have all landed.
const NOT_YET_EXPORTED: &[&str] = &[
    "nea_sessions_ended_total",
    "nea_build_info",
    "process_resident_memory_bytes",
    "process_open_fds",
    "process_max_fds",
    "process_start_time_seconds",
    "process_cpu_seconds_total",
];

/// A file of the repository, by its path from the root.
fn repo_file(path: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join(path)
}

fn read(path: &str) -> String {
    std::fs::read_to_string(repo_file(path)).unwrap_or_else(|err| panic!("read {path}: {err}"))
}

/// Runs `promtool args` from the repository's root. Without promtool the
/// test fails with one line saying how to get it, not a spawn error.
fn promtool(args: &[&str]) -> Output {
    match Command::new("promtool")
        .args(args)
        .current_dir(env!("CARGO_MANIFEST_DIR"))
        .output()
    {
        Ok(output) => output,
        Err(err) if err.kind() == ErrorKind::NotFound => panic!(
            "promtool is not installed; scripts/setup.sh installs it (Debian package prometheus)"
        ),
        Err(err) => panic!("promtool {args:?} could not run: {err}"),
    }
}

/// `promtool args` must succeed; returns its standard output.
fn promtool_succeeds(args: &[&str]) -> String {
    let output = promtool(args);
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    assert!(
        output.status.success(),
        "promtool {}: {}\n{stdout}{}",
        args.join(" "),
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    stdout
}

#[test]
fn the_rules_pass_promtool_and_their_unit_tests() {
    let checked = promtool_succeeds(&["check", "rules", RULES]);
    // promtool counts the rules it read; so does the reader the other tests
    // use, and the two must agree.
    let rules = alert_rules();
    assert!(
        checked.contains(&format!("SUCCESS: {} rules found", rules.len())),
        "promtool and this file's reader disagree on the rules:\n{checked}"
    );
    promtool_succeeds(&["test", "rules", RULE_TESTS]);
}

/// One alerting rule, as the tests need it.
#[derive(Debug)]
struct AlertRule {
    name: String,
    severity: String,
    expr: String,
}

/// The alerting rules of [`RULES`], after checking that each has what an
/// alert must carry.
fn alert_rules() -> Vec<AlertRule> {
    let file = yaml::parse(&read(RULES));
    let groups = file.get("groups").map(yaml::Yaml::list).unwrap_or_default();
    assert_eq!(groups.len(), 1, "one group of rules");
    let mut rules = Vec::new();
    for rule in groups[0]
        .get("rules")
        .map(yaml::Yaml::list)
        .unwrap_or_default()
    {
        let field = |path: &[&str]| {
            path.iter()
                .try_fold(rule, |node, key| node.get(key))
                .and_then(yaml::Yaml::text)
                .unwrap_or_default()
                .to_owned()
        };
        let name = field(&["alert"]);
        assert!(
            name.strip_prefix("Nea").is_some_and(|rest| {
                rest.starts_with(|c: char| c.is_ascii_uppercase())
                    && rest.chars().all(|c| c.is_ascii_alphanumeric())
            }),
            "{rule:?}: an alert's name is CamelCase and starts with Nea"
        );
        let severity = field(&["labels", "severity"]);
        assert!(
            severity == "critical" || severity == "warning",
            "{name}: severity is critical or warning, not {severity:?}"
        );
        assert!(
            !field(&["annotations", "summary"]).is_empty(),
            "{name}: no summary"
        );
        let description = field(&["annotations", "description"]);
        assert!(
            description.contains("{{ $labels.instance }}") && description.contains("$value"),
            "{name}: the description names the instance and the value: {description:?}"
        );
        let expr = field(&["expr"]);
        assert!(!expr.is_empty(), "{name}: no expr");
        rules.push(AlertRule {
            name,
            severity,
            expr,
        });
    }
    assert!(!rules.is_empty(), "no alerting rules in {RULES}");
    rules
}

/// One `alert_rule_test` case: the alert it evaluates and the severities
/// of the alerts it expects to fire.
#[derive(Debug)]
struct AlertCase {
    group: String,
    alertname: String,
    firing: Vec<String>,
}

/// Every `alert_rule_test` case of [`RULE_TESTS`].
fn alert_cases() -> Vec<AlertCase> {
    let file = yaml::parse(&read(RULE_TESTS));
    let rule_files: Vec<_> = file
        .get("rule_files")
        .map(yaml::Yaml::list)
        .unwrap_or_default()
        .into_iter()
        .filter_map(yaml::Yaml::text)
        .collect();
    assert_eq!(rule_files, ["nea.rules.yml"], "the tests load the rules");
    let mut cases = Vec::new();
    for group in file.get("tests").map(yaml::Yaml::list).unwrap_or_default() {
        let group_name = group
            .get("name")
            .and_then(yaml::Yaml::text)
            .unwrap_or_default();
        for case in group
            .get("alert_rule_test")
            .map(yaml::Yaml::list)
            .unwrap_or_default()
        {
            let alertname = case
                .get("alertname")
                .and_then(yaml::Yaml::text)
                .unwrap_or_else(|| panic!("{group_name}: a case without alertname"));
            let mut firing = Vec::new();
            for alert in case
                .get("exp_alerts")
                .map(yaml::Yaml::list)
                .unwrap_or_default()
            {
                let annotation = |key| {
                    alert
                        .get("exp_annotations")
                        .and_then(|annotations| annotations.get(key))
                        .and_then(yaml::Yaml::text)
                        .unwrap_or_default()
                };
                // Without them, a firing case would only check that
                // something fired, not what it says.
                assert!(
                    !annotation("summary").is_empty() && !annotation("description").is_empty(),
                    "{group_name}: {alertname} expected without its exact annotations"
                );
                let severity = alert
                    .get("exp_labels")
                    .and_then(|labels| labels.get("severity"))
                    .and_then(yaml::Yaml::text)
                    .unwrap_or_else(|| {
                        panic!("{group_name}: {alertname} expected without its labels")
                    });
                firing.push(severity.to_owned());
            }
            cases.push(AlertCase {
                group: group_name.to_owned(),
                alertname: alertname.to_owned(),
                firing,
            });
        }
    }
    cases
}

#[test]
fn every_alert_is_tested_firing_and_not_firing() {
    let rules = alert_rules();
    let cases = alert_cases();
    // A case for a misspelt alert expects nothing and so passes whatever
    // the rules do.
    for case in &cases {
        assert!(
            rules.iter().any(|rule| rule.name == case.alertname),
            "{}: no alert named {}",
            case.group,
            case.alertname
        );
    }
    // The same name may come at two severities (warning and critical): each
    // rule needs a case where its severity fires and one where it does not.
    let mut untested = Vec::new();
    for rule in &rules {
        let of_rule = || cases.iter().filter(|case| case.alertname == rule.name);
        if !of_rule().any(|case| case.firing.contains(&rule.severity)) {
            untested.push(format!("{} ({}) never fires", rule.name, rule.severity));
        }
        if !of_rule().any(|case| !case.firing.contains(&rule.severity)) {
            untested.push(format!(
                "{} ({}) is never tested quiet",
                rule.name, rule.severity
            ));
        }
    }
    assert!(untested.is_empty(), "in {RULE_TESTS}: {untested:#?}");
}

/// The dashboard, parsed.
fn dashboard() -> serde_json::Value {
    serde_json::from_str(&read(DASHBOARD)).expect("the dashboard is JSON")
}

/// The panels of the dashboard that show data (not its rows).
fn data_panels(dashboard: &serde_json::Value) -> Vec<&serde_json::Value> {
    dashboard["panels"]
        .as_array()
        .expect("panels")
        .iter()
        .filter(|panel| panel["type"] != "row")
        .collect()
}

/// Every PromQL query of the dashboard: its panels' and its variables'.
fn dashboard_queries(dashboard: &serde_json::Value) -> Vec<String> {
    let mut queries: Vec<String> = data_panels(dashboard)
        .iter()
        .flat_map(|panel| panel["targets"].as_array().expect("targets"))
        .map(|target| target["expr"].as_str().expect("expr").to_owned())
        .collect();
    for variable in dashboard["templating"]["list"]
        .as_array()
        .expect("variables")
    {
        if variable["type"] == "query" {
            queries.push(variable["definition"].as_str().expect("query").to_owned());
        }
    }
    queries
}

#[test]
fn the_dashboard_is_well_formed_and_its_queries_are_promql() {
    let dashboard = dashboard();
    assert!(
        dashboard["schemaVersion"].as_u64() >= Some(39),
        "a current Grafana's schema (11 or later)"
    );
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("variables");
    let variable = |name: &str| {
        variables
            .iter()
            .find(|variable| variable["name"] == name)
            .unwrap_or_else(|| panic!("no ${name} variable"))
    };
    assert_eq!(variable("datasource")["type"], "datasource");
    assert_eq!(variable("datasource")["query"], "prometheus");
    assert_eq!(variable("instance")["type"], "query");

    // Panels on Grafana's 24-column grid, none over another, each with a
    // unique id, the templated data source, and queries with unique refIds
    // that select the chosen instances.
    let mut ids = BTreeSet::new();
    let mut cells = BTreeSet::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        let title = panel["title"].as_str().expect("title");
        assert!(ids.insert(panel["id"].as_u64()), "{title}: id used twice");
        let at = |key: &str| panel["gridPos"][key].as_u64().expect("gridPos");
        assert!(at("x") + at("w") <= 24, "{title}: off the grid");
        for x in at("x")..at("x") + at("w") {
            for y in at("y")..at("y") + at("h") {
                assert!(cells.insert((x, y)), "{title} covers another panel");
            }
        }
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}");
        let mut ref_ids = BTreeSet::new();
        for target in panel["targets"].as_array().expect("targets") {
            assert!(ref_ids.insert(target["refId"].as_str()), "{title}: refId");
            assert_eq!(target["datasource"]["uid"], "${datasource}", "{title}");
            let expr = target["expr"].as_str().expect("expr");
            assert!(expr.contains(r#"instance=~"$instance""#), "{title}: {expr}");
        }
        assert!(!ref_ids.is_empty(), "{title}: no query");
    }

    // promtool parses PromQL in rule files: each query, with Grafana's
    // variables replaced by what Grafana would put there, as a recording
    // rule of a file of its own.
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (n, query) in dashboard_queries(&dashboard).iter().enumerate() {
        if query.starts_with("label_values(") {
            continue;
        }
        let query = query
            .replace("$__rate_interval", "5m")
            .replace("$instance", ".*");
        assert!(!query.contains('$'), "a variable left in {query}");
        rules.push_str(&format!(
            "      - record: dashboard:query_{n}\n        expr: '{}'\n",
            query.replace('\'', "''")
        ));
    }
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("dashboard.rules.yml");
    std::fs::write(&file, rules).expect("write");
    promtool_succeeds(&["check", "rules", file.to_str().expect("a UTF-8 path")]);
}

/// The metric names in a PromQL expression: identifiers starting with
/// `nea_` or `process_`, outside strings, label matchers and label lists,
/// and not followed by `(` (a function).
fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let is_name_char = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut names = BTreeSet::new();
    let mut braces = 0_usize;
    // Inside `by (...)`, `without (...)`, `on (...)` and the like, whose
    // identifiers are labels.
    let mut in_label_list = false;
    let mut last_word = String::new();
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => {
                i += 1;
                while i < chars.len() && chars[i] != c {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
                continue;
            }
            '{' => braces += 1,
            '}' => braces = braces.saturating_sub(1),
            '(' if matches!(
                last_word.as_str(),
                "by" | "without" | "on" | "ignoring" | "group_left" | "group_right"
            ) =>
            {
                in_label_list = true;
            }
            ')' => in_label_list = false,
            _ => {}
        }
        if (c.is_ascii_alphabetic() || c == '_' || c == ':')
            && (i == 0 || !(is_name_char(chars[i - 1]) || chars[i - 1] == '$'))
        {
            let start = i;
            while i < chars.len() && is_name_char(chars[i]) {
                i += 1;
            }
            let word: String = chars[start..i].iter().collect();
            let next = chars[i..].iter().find(|c| !c.is_whitespace());
            if braces == 0
                && !in_label_list
                && next != Some(&'(')
                && (word.starts_with("nea_") || word.starts_with("process_"))
            {
                names.insert(word.clone());
            }
            last_word = word;
            continue;
        }
        if !c.is_whitespace() {
            last_word.clear();
        }
        i += 1;
    }
    names
}

#[test]
fn metric_names_are_read_from_promql_conservatively() {
    let names = |expr| metric_names(expr).into_iter().collect::<Vec<_>>();
    assert_eq!(
        names(
            r#"sum without (reason) (rate(nea_handshake_failures_total{reason=~"nea_x|y"}[5m])) / rate(nea_connections_total[5m]) > 0.1"#
        ),
        ["nea_connections_total", "nea_handshake_failures_total"]
    );
    assert_eq!(
        names(
            "histogram_quantile(0.99, sum by (instance, le) (rate(nea_date_lateness_seconds_bucket[$__rate_interval])))"
        ),
        ["nea_date_lateness_seconds_bucket"]
    );
    assert_eq!(
        names("time() - process_start_time_seconds and on (nea_label) nea_build_info"),
        ["nea_build_info", "process_start_time_seconds"]
    );
    assert_eq!(
        names("label_values(nea_clients_connected, instance)"),
        ["nea_clients_connected"]
    );
}

/// The sample names of a scrape in the Prometheus text format.
fn sample_names(scrape: &str) -> BTreeSet<String> {
    scrape
        .lines()
        .filter(|line| !line.starts_with('#') && !line.is_empty())
        .filter_map(|line| line.split(['{', ' ']).next())
        .map(str::to_owned)
        .collect()
}

#[tokio::test]
async fn every_metric_the_rules_and_dashboard_use_is_in_a_live_scrape() {
    let dashboard = dashboard();
    let mut used = BTreeSet::new();
    for rule in alert_rules() {
        used.extend(metric_names(&rule.expr));
    }
    for query in dashboard_queries(&dashboard) {
        used.extend(metric_names(&query));
    }
    for name in NOT_YET_EXPORTED {
        assert!(
            used.contains(*name),
            "{name} is in NOT_YET_EXPORTED but no rule or panel uses it"
        );
    }

    // One slot, so that a second client is turned away.
    let (server, admin) = start_with_admin(&["--max-clients", "1", "--date-period", "100ms"]);
    // A family with labels appears at its first event until every label
    // value is exported at 0 from the start; make one of each.
    let mut junk = tokio::net::TcpStream::connect(server.addr)
        .await
        .expect("tcp");
    junk.write_all(b"GET / HTTP/1.1\r\n\r\n")
        .await
        .expect("junk");
    let mut rest = Vec::new();
    let _ = tokio::time::timeout(PATIENCE, junk.read_to_end(&mut rest)).await;
    let mut client = server.connect().await;
    client.send(&[0xff, b'\n']).await;
    let _ = client.non_date_frame().await;
    let mut turned_away = server.connect().await;
    let _ = turned_away.non_date_frame().await;
    // A session's line errors are counted when it ends.
    client.close().await;
    drop(turned_away);
    server.signal(Signal::SIGHUP);
    server
        .wait_for_log("certificate reloaded", PATIENCE)
        .expect("SIGHUP reloads");

    let deadline = Instant::now() + PATIENCE;
    let (scraped, missing) = loop {
        let (status, text) = get(admin, "/metrics");
        assert_eq!(status, 200);
        let scraped = sample_names(&text);
        let missing: Vec<_> = used
            .iter()
            .filter(|name| !scraped.contains(*name) && !NOT_YET_EXPORTED.contains(&name.as_str()))
            .cloned()
            .collect();
        if missing.is_empty() || Instant::now() > deadline {
            break (scraped, missing);
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert!(
        missing.is_empty(),
        "the rules or the dashboard use metrics the server does not export: {missing:?}\nscraped: {scraped:#?}"
    );
    eprintln!("not exported yet, skipped: {NOT_YET_EXPORTED:?}");
    let landed: Vec<_> = NOT_YET_EXPORTED
        .iter()
        .filter(|name| scraped.contains(**name))
        .collect();
    assert!(
        landed.is_empty(),
        "exported now, remove from NOT_YET_EXPORTED: {landed:?}"
    );

    // The other way round: the dashboard shows every metric the server
    // exports (a histogram through any of its samples), so that a new one
    // is not forgotten.
    let (_, text) = get(admin, "/metrics");
    let on_dashboard: BTreeSet<String> = dashboard_queries(&dashboard)
        .iter()
        .flat_map(|query| metric_names(query))
        .collect();
    let unshown: Vec<_> = text
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE "))
        .filter_map(|declared| declared.split(' ').next())
        .filter(|family| {
            !on_dashboard.iter().any(|name| {
                name.as_str() == *family
                    || ["_bucket", "_sum", "_count"]
                        .iter()
                        .any(|suffix| *name == format!("{family}{suffix}"))
            })
        })
        .collect();
    assert!(
        unshown.is_empty(),
        "exported but on no panel of {DASHBOARD}: {unshown:?}"
    );
    assert!(server.stop().success());
}

/// A reader for the small part of YAML that promtool's files use here:
/// block mappings and sequences, plain and quoted scalars, `|` and `|-`
/// blocks, and `[]`-style lists of scalars. Anything else (anchors, folded
/// blocks, multi-line plain scalars, flow mappings) stops the test rather
/// than being read wrongly; promtool, which reads full YAML, checks the
/// same files, and the rule count is compared with its own.
mod yaml {
    /// A YAML value.
    #[derive(Debug, Clone, PartialEq)]
    pub enum Yaml {
        Map(Vec<(String, Self)>),
        List(Vec<Self>),
        Text(String),
    }

    impl Yaml {
        /// The value of `key`, in a mapping.
        pub fn get(&self, key: &str) -> Option<&Self> {
            match self {
                Self::Map(entries) => entries.iter().find(|(k, _)| k == key).map(|(_, v)| v),
                _ => None,
            }
        }

        /// The items of a sequence; an empty value (`key:` alone) has none.
        pub fn list(&self) -> Vec<&Self> {
            match self {
                Self::List(items) => items.iter().collect(),
                Self::Text(text) if text.is_empty() => Vec::new(),
                other => panic!("not a list: {other:?}"),
            }
        }

        /// The text of a scalar.
        pub fn text(&self) -> Option<&str> {
            match self {
                Self::Text(text) => Some(text),
                _ => None,
            }
        }
    }

    /// Parses `text`; panics, naming the line, on what it does not read.
    pub fn parse(text: &str) -> Yaml {
        let mut parser = Parser {
            lines: text.lines().collect(),
            at: 0,
        };
        let indent = parser.next_indent().expect("an empty document");
        let document = parser.node(indent);
        if parser.next_indent().is_some() {
            parser.fail("not read");
        }
        document
    }

    struct Parser<'a> {
        lines: Vec<&'a str>,
        at: usize,
    }

    impl Parser<'_> {
        fn fail(&self, why: &str) -> ! {
            panic!(
                "YAML line {}: {why}: {:?}",
                self.at + 1,
                self.lines.get(self.at)
            )
        }

        /// Skips blank and comment lines; the indent of the next line.
        fn next_indent(&mut self) -> Option<usize> {
            while let Some(line) = self.lines.get(self.at) {
                let content = line.trim_start_matches(' ');
                if content.starts_with('\t') {
                    self.fail("a tab in the indent");
                }
                if content.is_empty() || content.starts_with('#') {
                    self.at += 1;
                    continue;
                }
                return Some(line.len() - content.len());
            }
            None
        }

        /// The block node starting at this line, at column `indent`.
        fn node(&mut self, indent: usize) -> Yaml {
            let line = self.lines[self.at];
            let content = &line[indent..];
            if content == "-" || content.starts_with("- ") {
                self.sequence(indent)
            } else {
                self.mapping(indent)
            }
        }

        fn sequence(&mut self, indent: usize) -> Yaml {
            let mut items = Vec::new();
            while self.next_indent() == Some(indent) {
                let line = self.lines[self.at];
                let Some(item) = line[indent..].strip_prefix('-') else {
                    // `key:` then its list at the key's own indent: the
                    // next key ends the list.
                    break;
                };
                let value = item.trim_start_matches(' ');
                if value.is_empty() {
                    self.at += 1;
                    match self.next_indent() {
                        Some(inner) if inner > indent => items.push(self.node(inner)),
                        _ => self.fail("an empty item"),
                    }
                } else if key_and_rest(value).is_some() {
                    // `- key: value` opens a mapping at the column of `key`.
                    items.push(self.mapping(line.len() - value.len()));
                } else {
                    items.push(self.scalar(value));
                    self.at += 1;
                }
                if self.next_indent().is_some_and(|next| next > indent) {
                    self.fail("indented under a list item");
                }
            }
            Yaml::List(items)
        }

        /// A mapping whose keys are at column `indent`; its first line may
        /// be a list item's (`- key: value`).
        fn mapping(&mut self, indent: usize) -> Yaml {
            let mut entries: Vec<(String, Yaml)> = Vec::new();
            let mut first = true;
            loop {
                if !first && self.next_indent() != Some(indent) {
                    break;
                }
                first = false;
                let line = self.lines[self.at];
                let content = &line[indent..];
                let Some((key, rest)) = key_and_rest(content) else {
                    if content.starts_with("- ") {
                        break;
                    }
                    self.fail("expected `key: value`");
                };
                if entries.iter().any(|(k, _)| *k == key) {
                    self.fail("a key given twice");
                }
                let value = match rest {
                    "" => {
                        self.at += 1;
                        match self.next_indent() {
                            Some(inner) if inner > indent => self.node(inner),
                            Some(inner)
                                if inner == indent
                                    && self.lines[self.at][indent..].starts_with("- ") =>
                            {
                                self.sequence(indent)
                            }
                            _ => Yaml::Text(String::new()),
                        }
                    }
                    "|" | "|-" => self.block(indent, rest == "|"),
                    _ => {
                        let value = self.scalar(rest);
                        self.at += 1;
                        value
                    }
                };
                entries.push((key, value));
                if self.next_indent().is_some_and(|next| next > indent) {
                    self.fail("unexpected indentation (a multi-line plain scalar?)");
                }
            }
            Yaml::Map(entries)
        }

        /// A `|` block (`|-` without its final newline) under a key at
        /// column `indent`.
        fn block(&mut self, indent: usize, keep_newline: bool) -> Yaml {
            self.at += 1;
            let mut lines = Vec::new();
            let mut block_indent = None;
            while let Some(&line) = self.lines.get(self.at) {
                let content = line.trim_start_matches(' ');
                let this_indent = line.len() - content.len();
                if content.is_empty() {
                    lines.push("");
                } else if this_indent > indent {
                    let at = *block_indent.get_or_insert(this_indent);
                    if this_indent < at {
                        self.fail("less indented than its block");
                    }
                    lines.push(&line[at..]);
                } else {
                    break;
                }
                self.at += 1;
            }
            while lines.last() == Some(&"") {
                lines.pop();
            }
            let mut text = lines.join("\n");
            if keep_newline {
                text.push('\n');
            }
            Yaml::Text(text)
        }

        /// A scalar, or a `[...]` list of scalars, on one line.
        fn scalar(&self, text: &str) -> Yaml {
            let (value, rest) = match text.chars().next() {
                Some(quote @ ('\'' | '"')) => self.quoted(text, quote),
                Some('[') => {
                    let Some((inner, rest)) = text[1..].split_once(']') else {
                        self.fail("an unclosed [");
                    };
                    if inner.contains(['[', '{', '"', '\'']) {
                        self.fail("a nested or quoted flow list");
                    }
                    let items = inner
                        .split(',')
                        .map(str::trim)
                        .filter(|item| !item.is_empty())
                        .map(|item| Yaml::Text(item.to_owned()))
                        .collect();
                    (Yaml::List(items), rest)
                }
                Some('{') if text.starts_with("{}") => (Yaml::Map(Vec::new()), &text[2..]),
                Some('{' | '&' | '*' | '!' | '>' | '|' | '%' | '@' | '`') => {
                    self.fail("a YAML feature this reader does not read")
                }
                _ => {
                    let plain = text.split(" #").next().unwrap_or_default().trim_end();
                    (Yaml::Text(plain.to_owned()), "")
                }
            };
            let rest = rest.trim_start();
            if !(rest.is_empty() || rest.starts_with('#')) {
                self.fail("text after a closed scalar");
            }
            value
        }

        /// A quoted scalar: its value and what follows its closing quote.
        fn quoted<'t>(&self, text: &'t str, quote: char) -> (Yaml, &'t str) {
            let mut value = String::new();
            let mut chars = text.char_indices().skip(1);
            while let Some((at, c)) = chars.next() {
                match (quote, c) {
                    ('\'', '\'') => {
                        if text[at + 1..].starts_with('\'') {
                            value.push('\'');
                            chars.next();
                        } else {
                            return (Yaml::Text(value), &text[at + 1..]);
                        }
                    }
                    ('"', '"') => return (Yaml::Text(value), &text[at + 1..]),
                    ('"', '\\') => match chars.next().map(|(_, escaped)| escaped) {
                        Some('"') => value.push('"'),
                        Some('\\') => value.push('\\'),
                        Some('n') => value.push('\n'),
                        Some('t') => value.push('\t'),
                        _ => self.fail("an escape this reader does not read"),
                    },
                    _ => value.push(c),
                }
            }
            self.fail("a quoted scalar not closed on its line")
        }
    }

    /// `key: rest` (or `key:` alone): the key, and the rest trimmed.
    /// `None` for a line that is not a mapping entry.
    fn key_and_rest(content: &str) -> Option<(String, &str)> {
        if content.starts_with(['\'', '"', '-', '[', '{', '#']) {
            return None;
        }
        let end = content
            .find(": ")
            .or_else(|| content.ends_with(':').then(|| content.len() - 1))?;
        let key = &content[..end];
        if key.is_empty() || key.contains(" #") {
            return None;
        }
        Some((key.to_owned(), content[end + 1..].trim()))
    }

    #[test]
    fn it_reads_the_forms_the_files_use_and_refuses_others() {
        let text = "\
# a comment
top:
  - name: one # a comment
    list: []
    quoted: 'it''s \"q\"'
    block: |
      a{x=\"1\"}

      b
  - name: two
    nested:
      key: nea-1:9443
    seq:
    - x
    - \"y\\\"\"
files: [a.yml, b.yml]
";
        let doc = parse(text);
        let items = doc.get("top").expect("top").list();
        assert_eq!(items.len(), 2);
        assert_eq!(items[0].get("name").and_then(Yaml::text), Some("one"));
        assert!(items[0].get("list").expect("list").list().is_empty());
        assert_eq!(
            items[0].get("quoted").and_then(Yaml::text),
            Some("it's \"q\"")
        );
        assert_eq!(
            items[0].get("block").and_then(Yaml::text),
            Some("a{x=\"1\"}\n\nb\n")
        );
        assert_eq!(
            items[1]
                .get("nested")
                .and_then(|n| n.get("key"))
                .and_then(Yaml::text),
            Some("nea-1:9443")
        );
        let seq: Vec<_> = items[1]
            .get("seq")
            .expect("seq")
            .list()
            .into_iter()
            .filter_map(Yaml::text)
            .collect();
        assert_eq!(seq, ["x", "y\""]);
        let files: Vec<_> = doc
            .get("files")
            .expect("files")
            .list()
            .into_iter()
            .filter_map(Yaml::text)
            .collect();
        assert_eq!(files, ["a.yml", "b.yml"]);
        for unread in [
            "a: &anchor 1\n",
            "a: >\n  folded\n",
            "a: plain\n  continued\n",
            "a: 'open\n",
            "a: 1\na: 2\n",
        ] {
            assert!(
                std::panic::catch_unwind(|| parse(unread)).is_err(),
                "read {unread:?}"
            );
        }
    }
}
