"""Local tooling for developing and testing Reciprocity on one machine; not part of the product.

- `local_kafka.LocalKafka`: a real single-node Apache Kafka broker from Maven Central jars (`make run`'s
  broker, the tests' and the benchmarks'); `python -m devstack.local_kafka --fetch-jars` fetches the jars;
- `local_postgres.LocalPostgres`: a throwaway PostgreSQL server for tests and benchmarks;
- `mail_sink.MailSink`: an SMTP sink keeping every message in a maildir (`make run`'s port 1025, the tests');
- `ports.free_port`: a free loopback port for any server started locally;
- `processes`: start/stop helpers the launchers share (die with the parent, stop politely, log tails).

It lives beside the product's folders, not inside them: it finds the repository through its own
`__file__` (the broker's pom and jars), and pyproject.toml lists the packages a wheel carries, so the
image never ships it. It is importable wherever the repository root is on sys.path: `python -m ...`
from the checkout (`make run`, `make bench`), pytest (tests/ is a package under the root), and
processes started elsewhere with PYTHONPATH set to the root (bench/stack.py, bench/chaos/stack.py).
"""
