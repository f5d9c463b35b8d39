//! How findings reach the store: whole while their lists grow, then as updates.
use super::*;

#[test]
fn a_farm_past_its_full_lists_is_updated_without_rewriting_them() {
    let mut d = Detector::new(Config::default(), (1, 1, 1));
    let n = MAX_EVIDENCE as i64 + 10;
    d.set_accounts((0..n).map(|i| (format!("farm{i}"), T0 - 60_000)));
    let mut outs = Vec::new();
    for i in 0..n {
        let at = T0 + i * 10;
        reg(&mut d, at, &format!("farm{i}"), "203.0.113.7:5060", "", 7);
        if i % 100 == 0 {
            d.tick(at);
        }
        outs.extend(d.drain());
    }
    d.tick(T0 + n * 10 + 10_000);
    outs.extend(d.drain());
    let net = Subject::Network(Network::parse("203.0.113.0/24").unwrap());
    let id = outs
        .iter()
        .find_map(|o| match o {
            Output::Finding(f) if f.subject == net => Some(f.id),
            _ => None,
        })
        .unwrap();
    // written whole while its lists grow, then only updated
    let whole: Vec<&Finding> = outs
        .iter()
        .filter_map(|o| match o {
            Output::Finding(f) if f.id == id => Some(f),
            _ => None,
        })
        .collect();
    let last_whole = outs
        .iter()
        .rposition(|o| matches!(o, Output::Finding(f) if f.id == id))
        .unwrap();
    let updates: Vec<&FindingUpdate> = outs
        .iter()
        .skip(last_whole)
        .filter_map(|o| match o {
            Output::FindingUpdate(u) if u.id == id => Some(u),
            _ => None,
        })
        .collect();
    assert_eq!(whole.last().unwrap().accounts.len(), MAX_EVIDENCE);
    assert!(!updates.is_empty(), "the full finding goes on as updates");
    let first_whole = outs
        .iter()
        .position(|o| matches!(o, Output::Finding(f) if f.id == id))
        .unwrap();
    let first_update = outs
        .iter()
        .position(|o| matches!(o, Output::FindingUpdate(u) if u.id == id))
        .unwrap();
    assert!(
        first_whole < first_update,
        "an update only follows a whole write"
    );
    let last = updates.last().unwrap();
    assert!(
        last.summary.starts_with(&format!("{n} accounts")),
        "{}",
        last.summary
    );
    assert!(last.updated_at > whole.last().unwrap().updated_at);
}
