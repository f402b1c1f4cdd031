"""What every role scenario may take for granted about the shared test host."""


def test_systemd_is_pid_1(host):
    assert host.process.get(pid=1).comm == "systemd"


def test_python_for_ansible(host):
    assert host.exists("python3")
    assert host.run("python3 -c 'import apt'").rc == 0


def test_no_machine_id_baked_into_the_image(host):
    # systemd writes a fresh one at boot; the image's file is empty.
    machine_id = host.file("/etc/machine-id").content_string.strip()
    assert len(machine_id) == 32
