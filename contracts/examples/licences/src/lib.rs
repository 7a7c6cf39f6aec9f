//! A licence registry shared by agencies.
//!
//! A user or admin of an organisation `issue`s a licence under its organisation's name (the
//! issuer) and a number of its choosing; only the issuer can `suspend`, `reinstate` or `revoke`
//! it (revocation is final). Any caller, of any organisation, `check`s a licence by issuer and
//! number: its holder, kind, state and expiry (a licence past its expiry, by the block's time,
//! is reported `expired`). Every action is kept in the licence's history.
//!
//! Methods (typed arguments of `docs/contracts.md` §2):
//! - `issue(number: str, holder: str, kind: str, valid_until_ms: u64)`: event `licence_issued`
//!   [issuer, number];
//! - `suspend(number: str, reason: str)`, `reinstate(number: str, reason: str)`,
//!   `revoke(number: str, reason: str)`: events `licence_suspended`, `licence_reinstated`,
//!   `licence_revoked` [issuer, number], the reason as data;
//! - queries `check(issuer: str, number: str) -> Licence`, `valid(issuer: str, number: str) ->
//!   bool` (false for an unknown licence), `history(issuer: str, number: str) -> list<Entry>`.

use gmchain_sdk::{abort, block_height, block_time_ms, caller, ensure, Caller, List, Map, Role};

gmchain_sdk::record! {
    /// A licence (`check`).
    pub struct Licence {
        pub issuer: String,
        pub number: String,
        pub holder: String,
        pub kind: String,
        /// `active`, `suspended`, `revoked`, or (reported only) `expired`.
        pub state: String,
        pub issued_at: u64,
        pub valid_until_ms: u64,
        /// The reason given for the last suspension, reinstatement or revocation.
        pub reason: String,
    }
}

gmchain_sdk::record! {
    /// One action in a licence's history.
    pub struct Entry {
        pub height: u64,
        pub time_ms: u64,
        /// `issued`, `suspended`, `reinstated` or `revoked`.
        pub action: String,
        pub organisation: String,
        pub common_name: String,
        pub reason: String,
    }
}

const LICENCES: Map<(String, String), Licence> = Map::new("licences");
const HISTORY: List<Entry> = List::new("history");

const MAX_NUMBER: usize = 64;

fn issuer(who: &Caller, action: &str) {
    ensure!(
        matches!(who.role, Role::Admin | Role::User),
        "only a user or admin of an organisation can {action} licences; the caller is `{}` of `{}`",
        who.role.as_str(),
        who.organisation
    );
}

fn issue(number: String, holder: String, kind: String, valid_until_ms: u64) {
    let who = caller();
    issuer(&who, "issue");
    ensure!(
        !number.is_empty() && number.len() <= MAX_NUMBER,
        "a licence number is 1 to {MAX_NUMBER} bytes"
    );
    ensure!(!holder.is_empty(), "licence `{number}`: no holder");
    let key = (who.organisation.clone(), number.clone());
    ensure!(
        !LICENCES.contains(&key),
        "`{}` already issued licence `{number}`",
        who.organisation
    );
    let now = block_time_ms();
    ensure!(
        valid_until_ms > now,
        "licence `{number}` would expire at {valid_until_ms} ms, not after the block's time {now} ms"
    );
    LICENCES.set(
        &key,
        &Licence {
            issuer: who.organisation.clone(),
            number: number.clone(),
            holder,
            kind,
            state: "active".to_string(),
            issued_at: block_height(),
            valid_until_ms,
            reason: String::new(),
        },
    );
    record(&key, "issued", &who, "");
    gmchain_sdk::emit(
        "licence_issued",
        &[who.organisation.as_bytes(), number.as_bytes()],
        &[],
    );
}

/// What `suspend`, `reinstate` and `revoke` do: the states they apply to, the state after,
/// the verb, the history's action and the event.
struct Change {
    from: &'static [&'static str],
    to: &'static str,
    verb: &'static str,
    action: &'static str,
    event: &'static str,
}

/// Applies `change` to licence `number` of the caller's organisation.
fn apply(number: String, reason: String, change: Change) {
    let who = caller();
    issuer(&who, change.verb);
    let key = (who.organisation.clone(), number.clone());
    let mut licence = match LICENCES.get(&key) {
        Some(l) => l,
        None => abort(&format!(
            "`{}` has issued no licence `{number}` (only its issuer can {} it)",
            who.organisation, change.verb
        )),
    };
    ensure!(
        change.from.contains(&licence.state.as_str()),
        "licence `{number}` is {}; it cannot be {}",
        licence.state,
        change.action
    );
    licence.state = change.to.to_string();
    licence.reason = reason.clone();
    LICENCES.set(&key, &licence);
    record(&key, change.action, &who, &reason);
    gmchain_sdk::emit(
        change.event,
        &[who.organisation.as_bytes(), number.as_bytes()],
        reason.as_bytes(),
    );
}

fn suspend(number: String, reason: String) {
    let change = Change {
        from: &["active"],
        to: "suspended",
        verb: "suspend",
        action: "suspended",
        event: "licence_suspended",
    };
    apply(number, reason, change);
}

fn reinstate(number: String, reason: String) {
    let change = Change {
        from: &["suspended"],
        to: "active",
        verb: "reinstate",
        action: "reinstated",
        event: "licence_reinstated",
    };
    apply(number, reason, change);
}

fn revoke(number: String, reason: String) {
    let change = Change {
        from: &["active", "suspended"],
        to: "revoked",
        verb: "revoke",
        action: "revoked",
        event: "licence_revoked",
    };
    apply(number, reason, change);
}

fn check(issuer: String, number: String) -> Licence {
    match LICENCES.get(&(issuer.clone(), number.clone())) {
        Some(mut licence) => {
            if licence.state == "active" && block_time_ms() > licence.valid_until_ms {
                licence.state = "expired".to_string();
            }
            licence
        }
        None => abort(&format!("`{issuer}` has issued no licence `{number}`")),
    }
}

fn valid(issuer: String, number: String) -> bool {
    match LICENCES.get(&(issuer, number)) {
        Some(licence) => licence.state == "active" && block_time_ms() <= licence.valid_until_ms,
        None => false,
    }
}

fn history(issuer: String, number: String) -> Vec<Entry> {
    HISTORY.at(&(issuer, number)).to_vec()
}

fn record(key: &(String, String), action: &str, who: &Caller, reason: &str) {
    HISTORY.at(key).push(&Entry {
        height: block_height(),
        time_ms: block_time_ms(),
        action: action.to_string(),
        organisation: who.organisation.clone(),
        common_name: who.common_name.clone(),
        reason: reason.to_string(),
    });
}

gmchain_sdk::contract! {
    fn issue(number: String, holder: String, kind: String, valid_until_ms: u64);
    fn suspend(number: String, reason: String);
    fn reinstate(number: String, reason: String);
    fn revoke(number: String, reason: String);
    fn check(issuer: String, number: String) -> Licence;
    fn valid(issuer: String, number: String) -> bool;
    fn history(issuer: String, number: String) -> Vec<Entry>;
}

#[cfg(test)]
mod tests {
    use gmchain_sdk::{testing, Arg, Role};

    use super::__gmchain_entry::call;
    use super::{Entry, Licence};

    fn run(org: &str, role: Role, method: &str, args: Vec<Vec<u8>>) -> Result<Vec<u8>, String> {
        testing::set_caller(org, "clerk", role);
        testing::set_input(method, args);
        testing::run(call).map(|()| testing::take_return().unwrap_or_default())
    }

    fn s(x: &str) -> Vec<u8> {
        x.to_string().encode()
    }

    fn check(issuer: &'static str, number: &'static str) -> Licence {
        Licence::decode(&run("Police", Role::Auditor, "check", vec![s(issuer), s(number)]).unwrap())
            .unwrap()
    }

    fn valid(issuer: &'static str, number: &'static str) -> bool {
        bool::decode(&run("Police", Role::User, "valid", vec![s(issuer), s(number)]).unwrap())
            .unwrap()
    }

    #[test]
    fn issue_suspend_reinstate_revoke_as_others_see_it() {
        testing::reset();
        testing::set_block(10, 1_000);
        let until = 5_000u64.encode();
        run(
            "Health",
            Role::User,
            "issue",
            vec![s("L-1"), s("Clinic A"), s("pharmacy"), until.clone()],
        )
        .unwrap();
        assert!(valid("Health", "L-1"));
        let l = check("Health", "L-1");
        assert_eq!(
            (l.holder.as_str(), l.state.as_str(), l.issued_at),
            ("Clinic A", "active", 10)
        );

        // Another agency cannot touch it; the issuer can.
        let e = run("Tax", Role::Admin, "suspend", vec![s("L-1"), s("x")]).unwrap_err();
        assert!(
            e.contains("`Tax` has issued no licence `L-1` (only its issuer can suspend it)"),
            "{e}"
        );
        run(
            "Health",
            Role::Admin,
            "suspend",
            vec![s("L-1"), s("inspection")],
        )
        .unwrap();
        assert!(!valid("Health", "L-1"));
        assert_eq!(check("Health", "L-1").reason, "inspection");
        let e = run("Health", Role::Admin, "suspend", vec![s("L-1"), s("again")]).unwrap_err();
        assert!(
            e.contains("licence `L-1` is suspended; it cannot be suspended"),
            "{e}"
        );
        run(
            "Health",
            Role::User,
            "reinstate",
            vec![s("L-1"), s("passed")],
        )
        .unwrap();
        assert!(valid("Health", "L-1"));
        run("Health", Role::User, "revoke", vec![s("L-1"), s("closed")]).unwrap();
        assert_eq!(check("Health", "L-1").state, "revoked");
        let e = run("Health", Role::User, "reinstate", vec![s("L-1"), s("")]).unwrap_err();
        assert!(
            e.contains("licence `L-1` is revoked; it cannot be reinstated"),
            "{e}"
        );

        let hist = Vec::<Entry>::decode(
            &run("Police", Role::User, "history", vec![s("Health"), s("L-1")]).unwrap(),
        )
        .unwrap();
        let actions: Vec<&str> = hist.iter().map(|e| e.action.as_str()).collect();
        assert_eq!(actions, ["issued", "suspended", "reinstated", "revoked"]);
        let events: Vec<String> = testing::take_events().into_iter().map(|e| e.name).collect();
        assert_eq!(
            events,
            [
                "licence_issued",
                "licence_suspended",
                "licence_reinstated",
                "licence_revoked"
            ]
        );
    }

    #[test]
    fn expiry_follows_the_block_time() {
        testing::reset();
        testing::set_block(1, 1_000);
        let until = 2_000u64.encode();
        run(
            "Health",
            Role::User,
            "issue",
            vec![s("L-2"), s("B"), s("k"), until.clone()],
        )
        .unwrap();
        testing::set_block(2, 2_001);
        assert!(!valid("Health", "L-2"));
        assert_eq!(check("Health", "L-2").state, "expired");
        let past = 2_000u64.encode();
        let e = run(
            "Health",
            Role::User,
            "issue",
            vec![s("L-3"), s("B"), s("k"), past.clone()],
        )
        .unwrap_err();
        assert!(
            e.contains("would expire at 2000 ms, not after the block's time 2001 ms"),
            "{e}"
        );
    }

    #[test]
    fn auditors_cannot_issue_and_numbers_are_unique_per_issuer() {
        testing::reset();
        let until = 9u64.encode();
        let e = run(
            "Health",
            Role::Auditor,
            "issue",
            vec![s("L"), s("B"), s("k"), until.clone()],
        )
        .unwrap_err();
        assert!(e.contains("only a user or admin of an organisation can issue licences; the caller is `auditor` of `Health`"), "{e}");
        run(
            "Health",
            Role::User,
            "issue",
            vec![s("L"), s("B"), s("k"), until.clone()],
        )
        .unwrap();
        let e = run(
            "Health",
            Role::Admin,
            "issue",
            vec![s("L"), s("C"), s("k"), until.clone()],
        )
        .unwrap_err();
        assert!(e.contains("`Health` already issued licence `L`"), "{e}");
        run(
            "Tax",
            Role::Admin,
            "issue",
            vec![s("L"), s("C"), s("k"), until.clone()],
        )
        .unwrap();
        assert!(!valid("Health", "nope"));
        let e = run("Police", Role::User, "check", vec![s("Health"), s("nope")]).unwrap_err();
        assert!(e.contains("`Health` has issued no licence `nope`"), "{e}");
    }
}
