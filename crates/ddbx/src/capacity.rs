//! `ddbx capacity restore --from RUN`: undo the capacity spikes of a run that crashed.

use ddbx_core::capacity;

use crate::args::{Global, Output};
use crate::connect::{load_aws, reach};
use crate::{exit, output};

/// Restore every spike the run recorded and did not put back; returns the exit code.
pub async fn restore(g: &Global, from: &str) -> u8 {
    let ready = async {
        let aws = load_aws(g).await?;
        reach(&aws, &[Some(from)]).await?;
        Ok::<_, ddbx_core::Error>(aws)
    };
    let aws = match ready.await {
        Ok(aws) => aws,
        Err(e) => return output::fail(&e),
    };
    let run = match aws.storage.open_existing(from) {
        Ok(run) => run,
        Err(e) => return output::fail(&e),
    };
    let spikes = match capacity::unrestored(&run).await {
        Ok(s) => s,
        Err(e) => return output::fail(&e),
    };
    let mut results = Vec::new();
    for spike in &spikes {
        let r = capacity::restore(&aws, &run, spike).await;
        results.push(serde_json::json!({
            "table": spike.table,
            "dimension": spike.dimension,
            "restored": r.is_ok(),
            "error": r.as_ref().err().map(|e| e.to_string()),
        }));
        match &r {
            Ok(()) => eprintln!("restored {} ({:?} capacity)", spike.table, spike.dimension),
            Err(e) => eprintln!("FAILED {e}"),
        }
    }
    if spikes.is_empty() {
        eprintln!("{from}: no capacity left to restore");
    }
    if g.output == Output::Json {
        println!("{}", serde_json::Value::Array(results.clone()));
    }
    if results.iter().all(|r| r["restored"] == true) {
        exit::OK
    } else {
        exit::TABLES_FAILED
    }
}
