//! Deletes RabbitMQ queues and exchanges left behind by test runs that were killed before their
//! own clean-up ran. Reads lines `queue NAME` or `exchange NAME` on stdin (scripts/test.sh feeds
//! it the `t_*` names `rabbitmqctl` lists) and deletes each over one AMQP connection.

use std::io::BufRead;

#[tokio::main(flavor = "current_thread")]
async fn main() -> anyhow::Result<()> {
    let mut queues = Vec::new();
    let mut exchanges = Vec::new();
    for line in std::io::stdin().lock().lines() {
        let line = line?;
        match line.split_once(' ') {
            Some(("queue", name)) => queues.push(name.trim().to_string()),
            Some(("exchange", name)) => exchanges.push(name.trim().to_string()),
            _ if line.trim().is_empty() => {}
            _ => anyhow::bail!("expected `queue NAME` or `exchange NAME`, got {line:?}"),
        }
    }
    let (nq, ne) = (queues.len(), exchanges.len());
    drop(ferry_testkit::amqp::Cleanup::new(queues, exchanges));
    println!("removed {nq} queues and {ne} exchanges left by earlier test runs");
    Ok(())
}
